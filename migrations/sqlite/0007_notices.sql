-- Timeline lines about the chat (a member added or removed, a rename): message entries the
-- projector writes from the event, with what they say about the chat (JSON).
ALTER TABLE messages ADD COLUMN notice TEXT;
