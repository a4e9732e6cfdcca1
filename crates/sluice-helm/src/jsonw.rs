//! Where written JSON goes: a `String`, or a stream fed in pieces (gzip for a release's
//! record, SHA-256 for helm-controller's digests), so that a record megabytes long is never
//! held whole as text.

use std::io::Write;

use sha2::{Digest as _, Sha256};

/// Text written in pieces.
pub trait JsonOut {
    /// Appends text.
    fn push_str(&mut self, s: &str);
    /// Appends one character.
    fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }
    /// Appends bytes in standard base64 (with padding).
    fn base64(&mut self, bytes: &[u8]);
}

impl JsonOut for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
    fn base64(&mut self, bytes: &[u8]) {
        data_encoding::BASE64.encode_append(bytes, self);
    }
}

/// How much text a stream gathers before handing it on.
const CHUNK: usize = 64 * 1024;

/// Base64 of long inputs is written this many input bytes at a time (a multiple of 3, so that
/// no padding falls in the middle).
const BASE64_CHUNK: usize = 3 * 16 * 1024;

/// A stream gathering text in a small buffer and handing it to `sink` a chunk at a time.
pub struct Streamed<W: Write> {
    buf: String,
    sink: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Streamed<W> {
    pub fn new(sink: W) -> Self {
        Streamed {
            buf: String::with_capacity(CHUNK + 1024),
            sink,
            error: None,
        }
    }

    fn drain(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.sink.write_all(self.buf.as_bytes())
        {
            self.error = Some(e);
        }
        self.buf.clear();
    }

    /// The sink, once everything written has reached it (or the first error writing it).
    pub fn finish(mut self) -> std::io::Result<W> {
        self.drain();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.sink),
        }
    }
}

impl<W: Write> JsonOut for Streamed<W> {
    fn push_str(&mut self, s: &str) {
        if self.buf.len() + s.len() > CHUNK {
            self.drain();
            if s.len() > CHUNK {
                if self.error.is_none()
                    && let Err(e) = self.sink.write_all(s.as_bytes())
                {
                    self.error = Some(e);
                }
                return;
            }
        }
        self.buf.push_str(s);
    }
    fn base64(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(BASE64_CHUNK) {
            data_encoding::BASE64.encode_append(piece, &mut self.buf);
            if self.buf.len() > CHUNK {
                self.drain();
            }
        }
    }
}

/// A SHA-256 being computed, as a sink.
#[derive(Default)]
pub struct Hashing(pub Sha256);

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream hands on exactly what a `String` would hold, however it is cut.
    #[test]
    fn a_stream_receives_what_a_string_would_hold() {
        let long = "x\u{e9}".repeat(CHUNK);
        let bytes: Vec<u8> = (0..BASE64_CHUNK * 2 + 7).map(|i| i as u8).collect();
        let write = |out: &mut dyn JsonOut| {
            out.push('{');
            out.push_str("\"a\":");
            out.push_str(&long);
            for _ in 0..5000 {
                out.push_str("short, ");
            }
            out.base64(&bytes);
            out.base64(b"ab");
            out.push('\u{1F600}');
        };
        let mut text = String::new();
        write(&mut text);
        let mut streamed = Streamed::new(Vec::new());
        write(&mut streamed);
        let got = streamed.finish().expect("a Vec takes anything");
        assert_eq!(got, text.into_bytes());
    }
}
