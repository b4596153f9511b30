//! The cap: one slot per connection, and room made when every slot is taken.
//!
//! A full cap is not refused outright: first, the connection that has waited longest without a
//! request in flight (one that sent a request line and nothing more, or a kept-alive one idle
//! after its response) is asked to close, and the new connection waits for its slot. A client
//! that sends its request at once is then served even while a flood holds every slot: to keep
//! it out, a flood would have to open as many connections as the cap within the few
//! milliseconds the client takes to send its request head. Only when no slot can be freed
//! (every connection has a request in flight) is a connection refused (503).
//! Apache's event MPM likewise closes idle keep-alive connections when it runs out of room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::activity::Activity;

/// How long a connection waits for the slot it made room for. A connection asked to close
/// before its first request closes at once, an idle one once its last answer is flushed; one
/// that had just begun a request finishes it first, and past this wait the newcomer is refused.
pub const ROOM_WAIT: Duration = Duration::from_secs(1);

/// The slots of one listener.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    permits: Arc<Semaphore>,
    held: Mutex<Held>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Held {
    /// Every connection holding a slot, by slot id.
    live: HashMap<u64, Arc<Activity>>,
    /// Slots promised to the connections that made room: handed over, not given back, so that
    /// no other newcomer can take one in between.
    heirs: HashMap<u64, oneshot::Sender<OwnedSemaphorePermit>>,
}

/// A connection's slot, given back (or handed to its heir) when dropped.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    id: u64,
    slots: Arc<Slots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let heir = {
            let mut held = self.slots.held();
            held.live.remove(&self.id);
            held.heirs.remove(&self.id)
        };
        if let (Some(heir), Some(permit)) = (heir, self.permit.take()) {
            // If the heir stopped waiting, the permit comes back here and is given back.
            let _ = heir.send(permit);
        }
    }
}

/// A slot promised by [`Slots::make_room`].
#[derive(Debug)]
pub struct Room(oneshot::Receiver<OwnedSemaphorePermit>);

impl Slots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            permits: Arc::new(Semaphore::new(max)),
            held: Mutex::new(Held::default()),
            next_id: AtomicU64::new(0),
        })
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit, activity: &Arc<Activity>) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.held().live.insert(id, activity.clone());
        Slot {
            permit: Some(permit),
            id,
            slots: self.clone(),
        }
    }

    /// A free slot for the connection of `activity`, if there is one.
    pub fn try_take(self: &Arc<Self>, activity: &Arc<Activity>) -> Option<Slot> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(self.register(permit, activity))
    }

    /// Asks the connection that has waited longest without a request in flight to close, and
    /// promises its slot; `None` if every connection has a request in flight. (A scan of the
    /// live connections: the cap is small, and this runs only when it is full.)
    pub fn make_room(&self) -> Option<Room> {
        let mut held = self.held();
        let (id, activity) = held
            .live
            .iter()
            .filter_map(|(id, a)| a.waiting_since().map(|since| (since, *id, a)))
            .min_by_key(|(since, ..)| *since)
            .map(|(_, id, a)| (id, a.clone()))?;
        let (heir, room) = oneshot::channel();
        held.heirs.insert(id, heir);
        activity.evict();
        Some(Room(room))
    }

    /// The slot `room` promised, for the connection of `activity`, once it is free (at most
    /// [`ROOM_WAIT`]).
    pub async fn inherit(self: &Arc<Self>, room: Room, activity: &Arc<Activity>) -> Option<Slot> {
        let permit = tokio::time::timeout(ROOM_WAIT, room.0).await.ok()?.ok()?;
        Some(self.register(permit, activity))
    }

    /// Connections holding a slot.
    pub fn open(&self) -> usize {
        self.held().live.len()
    }

    /// Waits until every slot is free (at shutdown).
    pub async fn drained(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::activity::InFlight;

    #[tokio::test]
    async fn room_is_made_by_the_longest_waiting_connection_without_a_request() {
        let slots = Slots::new(3);
        let oldest = Activity::new();
        let busy = Activity::new();
        let newest = Activity::new();
        let held: Vec<Slot> = [&oldest, &busy, &newest]
            .iter()
            .map(|a| slots.try_take(a).unwrap())
            .collect();
        let _request = InFlight::begin(busy.clone());
        let late = Activity::new();
        assert!(slots.try_take(&late).is_none(), "full");
        assert_eq!(slots.open(), 3);

        let room = slots.make_room().unwrap();
        assert!(oldest.waiting_since().is_none(), "the oldest was asked");
        assert!(newest.waiting_since().is_some());
        let unclaimed = slots.make_room().unwrap();
        assert!(newest.waiting_since().is_none());
        assert!(slots.make_room().is_none(), "the busy one is never asked");

        let mut held = held.into_iter();
        let (oldest_slot, _busy_slot, newest_slot) = (held.next(), held.next(), held.next());
        drop(oldest_slot);
        assert!(
            slots.try_take(&Activity::new()).is_none(),
            "the freed slot is promised, not free"
        );
        let slot = slots.inherit(room, &late).await;
        assert!(
            slot.is_some(),
            "the freed slot goes to the one that made room"
        );
        assert_eq!(slots.open(), 3);
        drop(unclaimed);
        drop(newest_slot);
        assert!(
            slots.try_take(&Activity::new()).is_some(),
            "a slot promised to no one waiting is given back"
        );
    }
}
