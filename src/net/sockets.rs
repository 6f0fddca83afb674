//! [`Sockets`]: the one owner of a run's websockets, each in a slot the
//! owner names (a device's own socket, a shared one, a projector's). The
//! live socket count is computed from them, never kept by hand; dropping a
//! socket (removing it, replacing it, [`Sockets::close_all`]) closes it.

use std::collections::BTreeMap;
use std::hash::Hash;

use super::Socket;

/// A run's sockets by slot.
pub struct Sockets<S: Ord, K: Clone + Eq + Hash + 'static> {
    sockets: BTreeMap<S, Socket<K>>,
}

impl<S: Ord, K: Clone + Eq + Hash + 'static> Default for Sockets<S, K> {
    fn default() -> Self {
        Sockets {
            sockets: BTreeMap::new(),
        }
    }
}

impl<S: Ord + Copy, K: Clone + Eq + Hash + 'static> Sockets<S, K> {
    /// Puts `socket` in `slot` and starts it; a socket already there is closed.
    pub fn start(&mut self, slot: S, socket: Socket<K>) -> &Socket<K> {
        socket.start();
        self.sockets.insert(slot, socket);
        &self.sockets[&slot]
    }

    /// The socket in `slot`.
    pub fn get(&self, slot: &S) -> Option<&Socket<K>> {
        self.sockets.get(slot)
    }

    /// Closes and forgets the socket in `slot`; whether there was one.
    pub fn remove(&mut self, slot: &S) -> bool {
        self.sockets.remove(slot).is_some()
    }

    /// Closes every socket.
    pub fn close_all(&mut self) {
        self.sockets.clear();
    }

    /// How many websockets are open now.
    pub fn live(&self) -> usize {
        self.sockets.values().filter(|s| s.is_open()).count()
    }

    /// How many sockets are held (open or not).
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether no socket is held.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Every held socket with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (&S, &Socket<K>)> {
        self.sockets.iter()
    }
}
