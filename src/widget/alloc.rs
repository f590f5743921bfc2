//! The widget build's allocator.

// Every widget downloads this build, so it uses the smallest allocator we found: lol_alloc's
// first-fit free list (0.6 KB less gzip than talc, several KB less than the default
// dlmalloc). Its O(free blocks) search is fine for a port client's few live allocations.
// `alloc`/`dealloc` stay out of line: inlined into every call site at opt-level 3 they cost
// more than the allocator saves. Only when the host is not compiled in (the host build keeps
// the default allocator).
#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: WidgetAlloc = WidgetAlloc(
    // SAFETY: wasm32 without the atomics feature runs this module on one thread only.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) },
);

#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
struct WidgetAlloc(lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator>);

// SAFETY: forwards to lol_alloc's GlobalAlloc unchanged.
#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
unsafe impl std::alloc::GlobalAlloc for WidgetAlloc {
    #[inline(never)]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        self.0.alloc(layout)
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        self.0.dealloc(ptr, layout)
    }
}
