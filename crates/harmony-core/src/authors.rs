//! Authors named as they are now: message stores keep an author's id only and re-hydrate the
//! names on read, through a profile source (the state store, or a cache in front of it), each
//! author looked up once per read.

use std::collections::HashMap;

use crate::model::Author;
use crate::ports::{StoreError, StoreResult, UserStore};
use crate::{MessageId, UserId};

pub struct Authors<'a> {
    profiles: &'a dyn UserStore,
    known: HashMap<UserId, Author>,
}

impl<'a> Authors<'a> {
    pub fn new(profiles: &'a dyn UserStore) -> Self {
        Self {
            profiles,
            known: HashMap::new(),
        }
    }

    /// The author `id` of `entry`; an id no profile has is a corrupt store.
    pub async fn get(&mut self, id: UserId, entry: MessageId) -> StoreResult<Author> {
        if let Some(a) = self.known.get(&id) {
            return Ok(a.clone());
        }
        let user = self.profiles.user(id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("message {entry} names unknown author {id}"))
        })?;
        let author = Author::from(&user);
        self.known.insert(id, author.clone());
        Ok(author)
    }
}
