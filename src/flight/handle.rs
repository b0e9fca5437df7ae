//! Statement and prepared-statement handles.
//!
//! Handles are self-contained: they carry the SQL text and, once parameters are bound, the
//! parameter values as Arrow IPC. Any server process can answer them and two clients never
//! share state, even when they prepare the same SQL.
//!
//! A ticket for a statement that changes data (INSERT, UPDATE, DELETE, MERGE, CALL) also carries
//! a random id, so the server can run it once: a client or proxy that retries the DoGet after a
//! lost answer gets an error instead of a second insert.
//!
//! Layout: `PSN1` | u32 SQL length | SQL (UTF-8) | parameters (IPC stream, may be empty);
//! `PSN2` | 16-byte id | the same.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{PersonaError, Result};

const MAGIC: &[u8; 4] = b"PSN1";
const MAGIC_ONCE: &[u8; 4] = b"PSN2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub sql: String,
    /// Bound parameters as an Arrow IPC stream; empty when none are bound.
    pub parameters: Bytes,
    /// Set on tickets that may run only once.
    pub once: Option<u128>,
}

impl Handle {
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), parameters: Bytes::new(), once: None }
    }

    pub fn with_parameters(&self, parameters: Bytes) -> Self {
        Self { sql: self.sql.clone(), parameters, once: self.once }
    }

    /// The same statement as a ticket that runs once, under a fresh random id.
    pub fn run_once(self) -> Self {
        Self { once: Some(uuid::Uuid::new_v4().as_u128()), ..self }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(24 + self.sql.len() + self.parameters.len());
        match self.once {
            Some(id) => {
                out.put_slice(MAGIC_ONCE);
                out.put_u128(id);
            }
            None => out.put_slice(MAGIC),
        }
        out.put_u32(self.sql.len() as u32);
        out.put_slice(self.sql.as_bytes());
        out.put_slice(&self.parameters);
        out.freeze()
    }

    pub fn decode(raw: &[u8]) -> Result<Self> {
        let bad = |why: &str| PersonaError::InvalidArgument(format!("malformed statement handle: {why}"));
        let mut buf = raw;
        let once = if buf.len() >= 4 && &buf[..4] == MAGIC_ONCE {
            if buf.len() < 24 {
                return Err(bad("truncated"));
            }
            buf.advance(4);
            Some(buf.get_u128())
        } else if buf.len() >= 8 && &buf[..4] == MAGIC {
            buf.advance(4);
            None
        } else {
            return Err(bad("not issued by this server"));
        };
        if buf.len() < 4 {
            return Err(bad("truncated"));
        }
        let len = buf.get_u32() as usize;
        if buf.len() < len {
            return Err(bad("truncated"));
        }
        let sql = std::str::from_utf8(&buf[..len]).map_err(|_| bad("SQL is not UTF-8"))?.to_string();
        let parameters = Bytes::copy_from_slice(&buf[len..]);
        Ok(Self { sql, parameters, once })
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
        let once = Handle::new("INSERT INTO t VALUES (1)").run_once();
        let decoded = Handle::decode(&once.encode()).unwrap();
        assert_eq!(decoded, once);
        assert!(decoded.once.is_some());
        assert_ne!(Handle::new("x").run_once().once, Handle::new("x").run_once().once);
    }
}
