//! A VM's main memory as real bytes, with dirty-page tracking for live migration (seed 001
//! §4.5 phase 2: every page is sent once, then the pages changed since, again and again).
//! Sparse: a page never written costs nothing and reads as zeros, so a 4 GiB guest that touched
//! 64 MiB holds 64 MiB. No I/O here: the VM's workload writes, the migration reads and loads.
//!
//! Pages are shared buffers, copied on write: a migration sends a page by reference (the
//! guest writing it meanwhile gets its own copy) instead of copying it into the frame first, and
//! a [`Snapshot`] keeps the memory of one moment — the target's at its resume — to checksum
//! while the guest runs on, instead of reading it all inside the pause.
//! A host keeps the pages of a guest that left it in a [`PagePool`] for the next one, as a
//! hypervisor keeps its memory: a page taken from it is overwritten whole before anyone reads
//! it, so it needs no zeroing — which, done by the OS for fresh memory, was the largest single
//! cost of receiving a migration.
use crate::error::{Result, VmrmError};
use bytes::{Bytes, BytesMut};

/// A running guest's memory: its workload writes it, a migration reads (or loads) it.
pub type SharedMemory = std::sync::Arc<std::sync::Mutex<GuestMemory>>;

/// Bytes per page: the unit of dirty tracking and of sending. 1 MiB (large pages) because each
/// page goes to the network as one buffer, one HTTP/2 frame: with 64 KiB pages every 64 KiB
/// cost a system call and two frames, and a migration moved about half as fast.
pub const PAGE_SIZE: usize = 1024 * 1024;

/// What a page never written reads as.
static ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// Free page buffers of one host, at most `limit` of them.
#[derive(Debug, Clone, Default)]
pub struct PagePool {
    free: std::sync::Arc<std::sync::Mutex<Vec<BytesMut>>>,
    limit: usize,
}

impl PagePool {
    /// A pool that keeps up to `bytes` of free pages.
    pub fn new(bytes: u64) -> Self {
        Self { free: Default::default(), limit: (bytes / PAGE_SIZE as u64) as usize }
    }

    /// A page buffer holding `bytes` (a whole page).
    fn filled(&self, bytes: &[u8]) -> Bytes {
        let mut page = self.free.lock().expect("page pool").pop().unwrap_or_else(|| BytesMut::with_capacity(PAGE_SIZE));
        page.clear();
        page.extend_from_slice(bytes);
        page.freeze()
    }

    fn give_back(&self, pages: impl Iterator<Item = Bytes>) {
        let mut free = self.free.lock().expect("page pool");
        for page in pages {
            if free.len() >= self.limit {
                return;
            }
            if let Ok(page) = page.try_into_mut()
                && page.capacity() == PAGE_SIZE
            {
                free.push(page);
            }
        }
    }

    pub fn free_pages(&self) -> usize {
        self.free.lock().expect("page pool").len()
    }
}

#[derive(Debug, Clone)]
pub struct GuestMemory {
    pages: Vec<Option<Bytes>>,
    /// Where this guest's pages come from and go back to.
    pool: PagePool,
    /// One bit per page: written since the last [`GuestMemory::take_dirty`].
    dirty: Vec<u64>,
}

/// One page's part of the checksum.
fn page_hash(index: usize, bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, index as u64)
}

impl GuestMemory {
    /// `size` bytes, a whole number of pages.
    pub fn new(size: u64) -> Result<Self> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE as u64) {
            return Err(VmrmError::invalid(format!(
                "guest memory of {size} bytes: it must be a positive multiple of {} KiB",
                PAGE_SIZE / 1024
            )));
        }
        let pages = (size / PAGE_SIZE as u64) as usize;
        Ok(Self { pages: vec![None; pages], dirty: vec![0; pages.div_ceil(64)], pool: PagePool::default() })
    }

    /// The same, taking pages from (and giving them back to) its host's `pool`.
    pub fn in_pool(size: u64, pool: PagePool) -> Result<Self> {
        let mut memory = Self::new(size)?;
        memory.pool = pool;
        Ok(memory)
    }

    pub fn size(&self) -> u64 {
        (self.pages.len() * PAGE_SIZE) as u64
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(VmrmError::invalid(format!(
                "{len} bytes at offset {offset} are outside the guest's {} bytes",
                self.size()
            ))),
        }
    }

    fn mark(&mut self, page: usize) {
        self.dirty[page / 64] |= 1 << (page % 64);
    }

    /// The guest writes: the pages touched become dirty.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_range(offset, data.len())?;
        let mut at = offset as usize;
        let mut rest = data;
        while !rest.is_empty() {
            let (page, within) = (at / PAGE_SIZE, at % PAGE_SIZE);
            let n = rest.len().min(PAGE_SIZE - within);
            let mut bytes = match self.pages[page].take() {
                // Shared with a migration frame in flight: the guest's own copy from now on.
                Some(shared) => shared.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..])),
                None => BytesMut::zeroed(PAGE_SIZE),
            };
            bytes[within..within + n].copy_from_slice(&rest[..n]);
            self.pages[page] = Some(bytes.freeze());
            self.mark(page);
            rest = &rest[n..];
            at += n;
        }
        Ok(())
    }

    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.check_range(offset, len)?;
        let mut out = Vec::with_capacity(len);
        let mut at = offset as usize;
        while out.len() < len {
            let (page, within) = (at / PAGE_SIZE, at % PAGE_SIZE);
            let n = (len - out.len()).min(PAGE_SIZE - within);
            match &self.pages[page] {
                Some(bytes) => out.extend_from_slice(&bytes[within..within + n]),
                None => out.resize(out.len() + n, 0),
            }
            at += n;
        }
        Ok(out)
    }

    /// A page's bytes; `None` for a page never written (zeros).
    pub fn page(&self, index: usize) -> Option<&[u8]> {
        self.pages.get(index).and_then(|p| p.as_deref())
    }

    /// The target side: a page as it was sent (not marked dirty: it is the source's state).
    pub fn load_page(&mut self, index: usize, bytes: Bytes) -> Result<()> {
        if index >= self.pages.len() || bytes.len() != PAGE_SIZE {
            return Err(VmrmError::invalid(format!(
                "page {index} of {} bytes does not fit a guest of {} pages of {PAGE_SIZE} bytes",
                bytes.len(),
                self.pages.len()
            )));
        }
        // A copy of its own: keeping the frame's buffer would keep the receiver's whole read
        // buffer alive and make it allocate anew for every frame.
        self.pages[index] = Some(self.pool.filled(&bytes));
        Ok(())
    }

    /// The `indexes` pages for a migration frame, shared, not copied (a page never written
    /// goes as zeros).
    pub fn share_pages(&self, indexes: &[u32]) -> Vec<Bytes> {
        indexes
            .iter()
            .map(|&i| self.pages.get(i as usize).cloned().flatten().unwrap_or_else(|| Bytes::from_static(&ZERO_PAGE)))
            .collect()
    }

    /// Loads the pages of a migration frame, one per index.
    pub fn load_pages(&mut self, indexes: &[u32], pages: Vec<Bytes>) -> Result<()> {
        if pages.len() != indexes.len() {
            return Err(VmrmError::invalid(format!(
                "a frame of {} indexes carries {} pages",
                indexes.len(),
                pages.len()
            )));
        }
        for (&i, bytes) in indexes.iter().zip(pages) {
            self.load_page(i as usize, bytes)?;
        }
        Ok(())
    }

    /// The pages as they are now, apart from later writes (which copy them): the memory of
    /// this moment, to checksum after the guest went on.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.pages.clone())
    }

    /// The start of a migration: every page that holds data must be sent.
    pub fn mark_all_written_dirty(&mut self) {
        for page in 0..self.pages.len() {
            if self.pages[page].is_some() {
                self.mark(page);
            }
        }
    }

    pub fn dirty_bytes(&self) -> u64 {
        (self.dirty_count() * PAGE_SIZE) as u64
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The dirty pages, in order; tracking starts over.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        let mut pages = Vec::with_capacity(self.dirty_count());
        for (w, word) in self.dirty.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                pages.push(w * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        pages
    }

    /// A checksum of the contents: equal for the same bytes in the same pages written.
    pub fn checksum(&self) -> u64 {
        checksum_of(&self.pages)
    }
}

/// A guest's memory at one moment (see [`GuestMemory::snapshot`]).
pub struct Snapshot(Vec<Option<Bytes>>);

impl Snapshot {
    pub fn checksum(&self) -> u64 {
        checksum_of(&self.0)
    }
}

fn checksum_of(pages: &[Option<Bytes>]) -> u64 {
    pages
        .iter()
        .enumerate()
        .filter_map(|(i, page)| page.as_deref().map(|bytes| page_hash(i, bytes)))
        .fold(0, u64::wrapping_add)
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        self.pool.give_back(self.pages.drain(..).flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_that_leaves_gives_its_pages_to_the_next() {
        let pool = PagePool::new(2 * PAGE_SIZE as u64);
        let mut first = GuestMemory::in_pool(4 * PAGE_SIZE as u64, pool.clone()).unwrap();
        for page in 0..3 {
            first.load_page(page, Bytes::from(vec![7u8; PAGE_SIZE])).unwrap();
        }
        drop(first);
        assert_eq!(pool.free_pages(), 2, "kept up to the pool's limit");
        let mut next = GuestMemory::in_pool(4 * PAGE_SIZE as u64, pool.clone()).unwrap();
        next.load_page(1, Bytes::from(vec![9u8; PAGE_SIZE])).unwrap();
        assert_eq!(next.read(PAGE_SIZE as u64, PAGE_SIZE).unwrap(), vec![9u8; PAGE_SIZE], "overwritten whole");
        assert_eq!(pool.free_pages(), 1);
    }

    #[test]
    fn sizes_must_be_whole_pages() {
        assert!(GuestMemory::new(0).is_err());
        assert!(GuestMemory::new(PAGE_SIZE as u64 + 1).is_err());
        let m = GuestMemory::new(4 << 30).expect("4 GiB, sparse");
        assert_eq!(m.page_count(), (4usize << 30) / PAGE_SIZE);
    }

    #[test]
    fn writes_across_pages_read_back_and_mark_each_page_dirty() {
        let mut m = GuestMemory::new(4 * PAGE_SIZE as u64).unwrap();
        let data: Vec<u8> = (0..PAGE_SIZE + 10).map(|i| (i % 251) as u8 + 1).collect();
        m.write(PAGE_SIZE as u64 - 5, &data).unwrap();
        assert_eq!(m.read(PAGE_SIZE as u64 - 5, data.len()).unwrap(), data);
        assert_eq!(m.read(0, 4).unwrap(), vec![0; 4], "untouched bytes are zero");
        assert_eq!(m.take_dirty(), vec![0, 1, 2]);
        assert_eq!(m.dirty_count(), 0, "tracking starts over");
        assert!(m.page(3).is_none(), "a page never written holds nothing");
        assert!(m.write(4 * PAGE_SIZE as u64 - 1, &[1, 2]).is_err(), "past the end");
    }

    #[test]
    fn pages_copied_to_another_memory_give_the_same_checksum() {
        let mut source = GuestMemory::new(8 * PAGE_SIZE as u64).unwrap();
        source.write(3 * PAGE_SIZE as u64 + 7, b"counter=41").unwrap();
        source.write(6 * PAGE_SIZE as u64, &[0; 16]).unwrap();
        let mut target = GuestMemory::new(8 * PAGE_SIZE as u64).unwrap();
        assert_ne!(source.checksum(), target.checksum());
        source.take_dirty();
        source.mark_all_written_dirty();
        for page in source.take_dirty() {
            target.load_page(page, source.share_pages(&[page as u32]).remove(0)).unwrap();
        }
        assert_eq!(source.checksum(), target.checksum());
        assert_eq!(target.dirty_count(), 0, "loaded pages are not the target's own writes");
        source.write(3 * PAGE_SIZE as u64, b"x").unwrap();
        let frame = source.share_pages(&[3]);
        source.write(3 * PAGE_SIZE as u64, b"y").unwrap();
        assert_eq!(&frame[0][..1], b"x", "a page sent is not changed by the guest's next write");
        target.load_pages(&[3], frame.clone()).unwrap();
        assert_ne!(target.checksum(), source.checksum(), "the source wrote again");
        target.load_pages(&[3], source.share_pages(&[3])).unwrap();
        assert_eq!(target.checksum(), source.checksum(), "a page sent again replaces the old one");
        let at_resume = target.snapshot();
        target.write(3 * PAGE_SIZE as u64, b"own").unwrap();
        assert_eq!(at_resume.checksum(), source.checksum(), "the snapshot keeps the moment");
        assert_ne!(target.checksum(), source.checksum(), "the guest went on");
        assert!(target.load_pages(&[1, 2], frame).is_err(), "two indexes, one page");
        assert!(target.load_page(8, Bytes::from_static(&ZERO_PAGE)).is_err());
        assert!(target.load_page(0, Bytes::from_static(&[0; 3])).is_err());
    }
}
