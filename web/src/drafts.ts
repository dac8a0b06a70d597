// Drafts: what was typed in a chat and not sent, per user and chat in localStorage, so a chat
// switch or a reload loses nothing. Sign-out forgets them all: the next user of this browser
// must not find them.
const PREFIX = "harmony.draft.";
const key = (userId: string, chatId: string) => `${PREFIX}${userId}.${chatId}`;

export function loadDraft(userId: string, chatId: string): string {
  try {
    return localStorage.getItem(key(userId, chatId)) ?? "";
  } catch {
    return "";
  }
}

export function saveDraft(userId: string, chatId: string, text: string): void {
  try {
    if (text.trim()) localStorage.setItem(key(userId, chatId), text);
    else localStorage.removeItem(key(userId, chatId));
  } catch {
    // Storage full or turned off: the draft lasts as long as the page.
  }
}

export function clearDrafts(): void {
  try {
    for (const k of Object.keys(localStorage)) if (k.startsWith(PREFIX)) localStorage.removeItem(k);
  } catch {
    // Nothing could be stored either.
  }
}
