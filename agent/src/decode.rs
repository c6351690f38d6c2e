//! Ring-buffer bytes to a checked [`FileWrite`]. No I/O: every length and offset is checked
//! against the record, so a malformed record is an [`Error`], never a panic.

use agent_common::{
    DedupKey, EventKind, Op, WriteEvent, EV_BASE2_RESOLVED, EV_BASE_RESOLVED, EV_HAS_PATH2,
    WRITE_EVENT_SIZE,
};

/// Errors decoding a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header.
    #[error("record of {0} bytes is shorter than the {WRITE_EVENT_SIZE}-byte header")]
    Short(usize),
    /// Unknown record kind.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    /// Unknown operation.
    #[error("unknown operation {0}")]
    UnknownOp(u32),
    /// A part runs past the end of the record.
    #[error("{part} of {len} bytes at offset {offset} runs past the {size}-byte record")]
    Overrun {
        /// Which part.
        part: &'static str,
        /// Its offset in the payload.
        offset: usize,
        /// Its length.
        len: usize,
        /// Payload size.
        size: usize,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One decoded write, paths still as the syscall named them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// The header as sent.
    pub header: WriteEvent,
    /// The operation.
    pub op: Op,
    /// The first path as passed to the syscall.
    pub path: Vec<u8>,
    /// Its base directory when the kernel resolved it: names leaf first, NUL-terminated.
    pub base: Option<Vec<u8>>,
    /// The second path (rename/link source, symlink content).
    pub path2: Option<Vec<u8>>,
    /// Its base directory when resolved.
    pub base2: Option<Vec<u8>>,
}

impl FileWrite {
    /// The dedup key the record opened.
    pub fn key(&self) -> DedupKey {
        self.header.key
    }
    /// Thread-group id (the process id).
    pub fn pid(&self) -> u32 {
        (self.header.pid_tgid >> 32) as u32
    }
    /// `comm`, lossily.
    pub fn comm(&self) -> String {
        let c = &self.header.comm;
        let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
        String::from_utf8_lossy(&c[..end]).into_owned()
    }
}

const fn align8(off: usize) -> usize {
    (off + 7) & !7
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<FileWrite> {
    if bytes.len() < WRITE_EVENT_SIZE {
        return Err(Error::Short(bytes.len()));
    }
    // SAFETY: WriteEvent is repr(C) plain integers; read_unaligned copes with any alignment.
    let header: WriteEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    if header.kind != EventKind::Write as u32 {
        return Err(Error::UnknownKind(header.kind));
    }
    let op = u8::try_from(header.op)
        .ok()
        .and_then(Op::from_u8)
        .ok_or(Error::UnknownOp(header.op))?;
    let payload = &bytes[WRITE_EVENT_SIZE..];
    let take = |part: &'static str, offset: usize, len: usize| -> Result<Vec<u8>> {
        payload
            .get(offset..offset + len)
            .map(<[u8]>::to_vec)
            .ok_or(Error::Overrun {
                part,
                offset,
                len,
                size: payload.len(),
            })
    };
    let path = take("path", 0, header.path_len as usize)?;
    let mut end = header.path_len as usize;
    let mut path2 = None;
    if header.flags & EV_HAS_PATH2 != 0 {
        let off = align8(end);
        path2 = Some(take("path2", off, header.path2_len as usize)?);
        end = off + header.path2_len as usize;
    }
    let mut base = None;
    if header.flags & EV_BASE_RESOLVED != 0 {
        let off = align8(end);
        base = Some(take("base", off, header.base_len as usize)?);
        end = off + header.base_len as usize;
    }
    let mut base2 = None;
    if header.flags & EV_BASE2_RESOLVED != 0 {
        let off = align8(end);
        base2 = Some(take("base2", off, header.base2_len as usize)?);
    }
    Ok(FileWrite {
        header,
        op,
        path,
        base,
        path2,
        base2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(op: Op, flags: u32, lens: [u16; 4]) -> WriteEvent {
        WriteEvent {
            kind: EventKind::Write as u32,
            flags,
            key: DedupKey::default(),
            ret: -30,
            ktime_ns: 1,
            pid_tgid: 42 << 32 | 43,
            mnt_ns: 0,
            raw_flags: 0,
            dirfd: -100,
            dirfd2: -100,
            uid: 0,
            op: op as u32,
            path_len: lens[0],
            base_len: lens[1],
            path2_len: lens[2],
            base2_len: lens[3],
            comm: *b"touch\0\0\0\0\0\0\0\0\0\0\0",
        }
    }

    fn record(h: &WriteEvent, payload: &[u8]) -> Vec<u8> {
        // SAFETY: plain-integer repr(C) struct viewed as bytes.
        let head = unsafe {
            std::slice::from_raw_parts((h as *const WriteEvent).cast::<u8>(), WRITE_EVENT_SIZE)
        };
        [head, payload].concat()
    }

    #[test]
    fn decodes_all_parts_at_aligned_offsets() {
        let flags = EV_HAS_PATH2 | EV_BASE_RESOLVED | EV_BASE2_RESOLVED;
        let h = header(Op::Rename, flags, [3, 4, 5, 2]);
        // "new" @0, "../ol" @8, "b\0a\0" @16, "c\0" @24
        let mut p = vec![0u8; 26];
        p[0..3].copy_from_slice(b"new");
        p[8..13].copy_from_slice(b"../ol");
        p[16..20].copy_from_slice(b"b\0a\0");
        p[24..26].copy_from_slice(b"c\0");
        let w = decode(&record(&h, &p)).unwrap();
        assert_eq!(w.op, Op::Rename);
        assert_eq!(w.path, b"new");
        assert_eq!(w.path2.as_deref(), Some(&b"../ol"[..]));
        assert_eq!(w.base.as_deref(), Some(&b"b\0a\0"[..]));
        assert_eq!(w.base2.as_deref(), Some(&b"c\0"[..]));
        assert_eq!(w.pid(), 42);
        assert_eq!(w.comm(), "touch");
    }

    #[test]
    fn rejects_malformed_records() {
        assert_eq!(decode(&[0u8; 10]), Err(Error::Short(10)));
        let mut h = header(Op::Open, 0, [10, 0, 0, 0]);
        assert!(matches!(
            decode(&record(&h, b"short")),
            Err(Error::Overrun { part: "path", .. })
        ));
        h.kind = 7;
        assert_eq!(decode(&record(&h, &[0; 10])), Err(Error::UnknownKind(7)));
        let mut h = header(Op::Open, 0, [0; 4]);
        h.op = 99;
        assert_eq!(decode(&record(&h, &[])), Err(Error::UnknownOp(99)));
    }
}
