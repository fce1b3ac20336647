//! Parsed GraphQL documents, kept by their text. A client sends the same few documents over and
//! over, its variables apart, and parsing one is the dearest step before execution: ~270,000
//! instructions of the 6.5 M an accounts page costs (#22, callgrind). A request whose text was
//! parsed before starts from a copy of that parse (the names in it are shared, so a copy is a
//! fraction of a parse); every check after the parse (depth, directives, complexity with the
//! request's variables, validation) still runs on every request.
//!
//! Bounded: at most [`CAPACITY`] documents, least recently used out first, each of at most
//! [`MAX_BYTES`] of text (a longer one is parsed every time). Only documents that passed the
//! document limits are kept.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// How many documents are kept.
pub const CAPACITY: NonZeroUsize = NonZeroUsize::MIN.saturating_add(255);
/// The longest document text kept, in bytes.
pub const MAX_BYTES: usize = 8 * 1024;

pub struct Documents {
    kept: Mutex<LruCache<Box<str>, Arc<ExecutableDocument>>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            kept: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl Documents {
    /// A copy of the parse of `text`, when it was kept.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        if text.len() > MAX_BYTES {
            return None;
        }
        let found = self.lock().get(text).cloned()?;
        Some(ExecutableDocument::clone(&found))
    }

    /// Keeps `doc`, the parse of `text`.
    pub fn keep(&self, text: &str, doc: &ExecutableDocument) {
        if text.len() <= MAX_BYTES {
            self.lock().put(text.into(), Arc::new(doc.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, Arc<ExecutableDocument>>> {
        // A panic while holding the lock cannot leave the cache inconsistent for our use: each
        // operation is one call into it.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
