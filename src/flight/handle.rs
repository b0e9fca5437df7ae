//! Statement and prepared-statement handles.
//!
//! Handles are self-contained: they carry the SQL text and, once parameters are bound, the
//! parameter values as Arrow IPC. Any server process can answer them and two clients never
//! share state, even when they prepare the same SQL.
//!
//! Layout: `PSN1` | u32 SQL length | SQL (UTF-8) | parameters (IPC stream, may be empty)

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{PersonaError, Result};

const MAGIC: &[u8; 4] = b"PSN1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub sql: String,
    /// Bound parameters as an Arrow IPC stream; empty when none are bound.
    pub parameters: Bytes,
}

impl Handle {
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), parameters: Bytes::new() }
    }

    pub fn with_parameters(&self, parameters: Bytes) -> Self {
        Self { sql: self.sql.clone(), parameters }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(8 + self.sql.len() + self.parameters.len());
        out.put_slice(MAGIC);
        out.put_u32(self.sql.len() as u32);
        out.put_slice(self.sql.as_bytes());
        out.put_slice(&self.parameters);
        out.freeze()
    }

    pub fn decode(raw: &[u8]) -> Result<Self> {
        let bad = |why: &str| PersonaError::InvalidArgument(format!("malformed statement handle: {why}"));
        let mut buf = raw;
        if buf.len() < 8 || &buf[..4] != MAGIC {
            return Err(bad("not issued by this server"));
        }
        buf.advance(4);
        let len = buf.get_u32() as usize;
        if buf.len() < len {
            return Err(bad("truncated"));
        }
        let sql = std::str::from_utf8(&buf[..len]).map_err(|_| bad("SQL is not UTF-8"))?.to_string();
        let parameters = Bytes::copy_from_slice(&buf[len..]);
        Ok(Self { sql, parameters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let h = Handle::new("SELECT $1").with_parameters(Bytes::from_static(b"ipc"));
        assert_eq!(Handle::decode(&h.encode()).unwrap(), h);
        assert!(Handle::decode(b"garbage").is_err());
        let mut truncated = h.encode().to_vec();
        truncated.truncate(10);
        assert!(Handle::decode(&truncated).is_err());
    }
}
