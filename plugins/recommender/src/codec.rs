//! Little-endian fixed-width integers and LEB128 varints: the building blocks
//! of the model blob (see `model.rs` for its layout).

use patron_sdk::Error;

/// The error for a blob that is not a model this plugin wrote.
pub(crate) fn bad_model(what: &str) -> Error {
    Error::new("bad-model", format!("model blob is corrupt or foreign: {what}"))
}

/// An append-only byte buffer.
#[derive(Default)]
pub(crate) struct Writer {
    /// The bytes written so far.
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// Append a `u32`, little-endian.
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Append a `u64`, little-endian.
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Append an `i64`, little-endian.
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Append an unsigned LEB128 varint.
    pub(crate) fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// Append a length-prefixed (`u32`) section.
    pub(crate) fn section(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.u32(len_u32(bytes.len())?);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

/// `n` as a `u32`, or an error for a model too large to address.
pub(crate) fn len_u32(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::new("model-too-large", "model exceeds 4 GiB"))
}

/// A cursor over a byte slice; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or_else(|| bad_model("length overflow"))?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(|| bad_model("truncated"))?;
        self.pos = end;
        Ok(bytes)
    }

    /// The next `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// The next `i64`.
    pub(crate) fn i64(&mut self) -> Result<i64, Error> {
        self.u64().map(|v| i64::from_le_bytes(v.to_le_bytes()))
    }

    /// The next varint.
    pub(crate) fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or_else(|| bad_model("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad_model("varint too long"))
    }

    /// The next varint, which must fit a `u32`.
    pub(crate) fn varint_u32(&mut self) -> Result<u32, Error> {
        u32::try_from(self.varint()?).map_err(|_| bad_model("varint out of range"))
    }

    /// The next length-prefixed section.
    pub(crate) fn section(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The `i`-th little-endian `u32` of `bytes`, if there is one.
pub(crate) fn u32_at(bytes: &[u8], i: usize) -> Option<u32> {
    let start = i.checked_mul(4)?;
    let b = bytes.get(start..start.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut w = Writer::default();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            w.varint(v);
        }
        let mut r = Reader::new(&w.buf);
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(r.varint().expect("varint"), v);
        }
        assert!(r.at_end());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }
}
