//! One connection per mailbox, kept for the run, with a bound on how many
//! are open at once: when the bound is reached, the connection of a
//! mailbox nobody is using is logged out to make room. At the end of the
//! run every connection is logged out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};

use super::conn::{Conn, OpenError};

/// A freshly logged-in connection and the archive folder's name there.
pub struct Opened {
    pub conn: Conn,
    /// The folder in the user's personal namespace, quoted for commands.
    pub folder_arg: String,
}

/// What became of creating and selecting the archive folder.
#[derive(Debug, Clone)]
pub enum Folder {
    /// Selected, with its UIDVALIDITY.
    Selected(u32),
    /// The server refused it; why, in its own (escaped) words.
    Refused(String),
}

/// A mailbox's connection and what is known about it.
pub struct Session {
    pub conn: Conn,
    pub folder_arg: String,
    /// Set once the archive folder was created if missing and selected
    /// (the server then appends to an open folder instead of opening it
    /// for every message), or refused.
    pub folder: OnceCell<Folder>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Session {
    /// Gives back the connection's place in the pool.
    fn release(&self) {
        self.permit.lock().expect("permit lock").take();
    }

    /// Logs out, after giving back the connection's place in the pool.
    async fn close(&self) {
        self.release();
        self.conn.logout().await;
    }
}

#[derive(Default)]
struct Slot {
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    users: AtomicUsize,
}

/// Keeps a mailbox's slot marked in use while a caller holds its session.
pub struct InUse {
    slot: Arc<Slot>,
    idle: Arc<Notify>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        if self.slot.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

pub struct Pool {
    permits: Arc<Semaphore>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    idle: Arc<Notify>,
}

impl Pool {
    pub fn new(max_connections: usize) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            slots: Mutex::new(HashMap::new()),
            idle: Arc::new(Notify::new()),
        }
    }

    /// The live session of mailbox `key`, opening one with `open` if there
    /// is none (or the last one died).
    pub async fn session<F, Fut>(
        &self,
        key: &str,
        open: F,
    ) -> Result<(Arc<Session>, InUse), OpenError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Opened, OpenError>>,
    {
        let slot = self.slot(key);
        slot.users.fetch_add(1, Ordering::AcqRel);
        let in_use = InUse {
            slot: slot.clone(),
            idle: self.idle.clone(),
        };
        let mut current = slot.session.lock().await;
        if let Some(session) = current.as_ref().filter(|s| s.conn.is_alive()) {
            return Ok((session.clone(), in_use));
        }
        *current = None;
        let permit = self.permit(&slot).await;
        let opened = open().await?;
        let session = Arc::new(Session {
            conn: opened.conn,
            folder_arg: opened.folder_arg,
            folder: OnceCell::new(),
            permit: Mutex::new(Some(permit)),
        });
        *current = Some(session.clone());
        Ok((session, in_use))
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.entry(key.to_owned()).or_default().clone()
    }

    async fn permit(&self, mine: &Arc<Slot>) -> OwnedSemaphorePermit {
        loop {
            let notified = self.idle.notified();
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return permit;
            }
            if self.close_an_idle_session(mine) {
                continue;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    fn close_an_idle_session(&self, mine: &Arc<Slot>) -> bool {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .expect("pool lock")
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if Arc::ptr_eq(&slot, mine) || slot.users.load(Ordering::Acquire) > 0 {
                continue;
            }
            if let Ok(mut session) = slot.session.try_lock()
                && let Some(idle) = session.take()
            {
                idle.release();
                tokio::spawn(async move { idle.conn.logout().await });
                return true;
            }
        }
        false
    }

    /// Logs every open session out, as the run ends.
    pub async fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .expect("pool lock")
            .values()
            .cloned()
            .collect();
        let mut open = Vec::new();
        for slot in slots {
            if let Some(session) = slot.session.lock().await.take() {
                open.push(session);
            }
        }
        futures_util::future::join_all(open.iter().map(|s| s.close())).await;
    }
}
