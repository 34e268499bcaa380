//! A small bounds-checked binary codec for snapshots (`snapshot.rs`) and
//! the folds they carry: little-endian integers, length-prefixed strings.
//! Every read checks the remaining bytes first, and a count is checked
//! against what the remaining bytes could possibly hold before anything is
//! allocated, so corrupt or hostile input is an `Err`, never a panic or a
//! huge allocation.

/// Appends values to a buffer.
#[derive(Debug)]
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads values from the front of a slice.
#[derive(Debug)]
pub struct Reader<'a, 'b>(pub &'a mut &'b [u8]);

impl<'b> Reader<'_, 'b> {
    pub fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "snapshot too short: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        *self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A count of items of at least `min_item_bytes` each: refused if the
    /// remaining bytes cannot hold that many.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let fits = (self.0.len() / min_item_bytes.max(1)) as u64;
        if n > fits {
            return Err(format!(
                "snapshot claims {n} items where {} bytes remain",
                self.0.len()
            ));
        }
        Ok(n as usize)
    }
    pub fn str(&mut self) -> Result<String, String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "snapshot string is not UTF-8".into())
    }
}
