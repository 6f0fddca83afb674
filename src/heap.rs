//! What this wasm instance's allocator holds: the bytes in use now and the
//! most ever in use at once.
//!
//! A wasm instance's memory only grows, so its size tells the most the
//! instance ever asked for, not what it holds now. The run's engine reports
//! both figures beside the memory's size, so a benchmark can tell memory that
//! devices keep from memory a burst (a join storm, a queue of requests) once
//! needed.
//!
//! # Layout
//!
//! - [`Counting`]: the global allocator on wasm: the platform's, counted.
//! - [`HeapUse`]: the two figures, read with [`HeapUse::now`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

/// The platform's allocator with a count of the bytes it has handed out and
/// not had back. The counts are plain loads and stores on a wasm build
/// without threads.
pub struct Counting {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl Counting {
    // The global allocator only on wasm: a native build never makes one.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    const fn new() -> Self {
        Self {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn added(&self, bytes: usize) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(live, Ordering::Relaxed);
    }

    fn removed(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; the counts only
// record the sizes of the layouts given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        self.removed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.removed(layout.size());
            self.added(new_size);
        }
        new
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: Counting = Counting::new();

/// Bytes this instance's allocator holds: in use now, and the most at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapUse {
    pub live_bytes: u64,
    pub peak_bytes: u64,
}

impl HeapUse {
    /// This instance's figures (zeros where the allocator is not counted: a
    /// native build).
    pub fn now() -> Self {
        #[cfg(target_arch = "wasm32")]
        {
            Self {
                live_bytes: ALLOCATOR.live.load(Ordering::Relaxed) as u64,
                peak_bytes: ALLOCATOR.peak.load(Ordering::Relaxed) as u64,
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Self::default()
        }
    }

    /// Two instances' figures together (the peaks summed: at most what both
    /// held, as their peaks need not have come at once).
    pub fn plus(self, other: Self) -> Self {
        Self {
            live_bytes: self.live_bytes + other.live_bytes,
            peak_bytes: self.peak_bytes + other.peak_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_held_and_the_most_held() {
        let a = Counting::new();
        let small = Layout::from_size_align(100, 8).unwrap();
        let big = Layout::from_size_align(1000, 8).unwrap();
        unsafe {
            let p = a.alloc(small);
            let q = a.alloc(big);
            a.dealloc(q, big);
            let p = a.realloc(p, small, 300);
            assert_eq!(a.live.load(Ordering::Relaxed), 300);
            assert_eq!(a.peak.load(Ordering::Relaxed), 1100);
            a.dealloc(p, Layout::from_size_align(300, 8).unwrap());
        }
        assert_eq!(a.live.load(Ordering::Relaxed), 0);
        assert_eq!(a.peak.load(Ordering::Relaxed), 1100);
    }
}
