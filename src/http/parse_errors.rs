//! A JSON body for the answers hyper writes itself. A request that is not valid HTTP (a NUL or
//! another control character in a header, a malformed method, URI or version, headers too
//! large, a URI too long) never reaches the router: hyper answers it with a bare status line,
//! `content-length: 0`, and closes the connection. [`JsonParseErrors`] sits between hyper and
//! the socket and writes, in place of that answer, the same status with a JSON error body like
//! every other error of herald's.
//!
//! Such an answer is recognised by its bytes: it starts a write, its status is one hyper sends
//! for a parse error (400, 414, 431), and its head has `content-length: 0` and no
//! `content-type`. Nothing the router sends looks like that: every error answer of the router
//! carries a JSON body and its content type (`json_errors` in [`crate::http`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream whose parse-error answers from hyper get a JSON body.
pub struct JsonParseErrors<S> {
    stream: S,
    /// The replacement answer being written, and how much of it has been.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonParseErrors<S> {
    pub fn new(stream: S) -> Self {
        JsonParseErrors {
            stream,
            pending: None,
        }
    }
}

/// The end of a response head.
const HEAD_END: &[u8] = b"\r\n\r\n";

/// hyper's answers to requests it cannot parse: the status line, the error code, the message.
const PARSE_ERRORS: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 ",
        "MALFORMED_REQUEST",
        "The request is not valid HTTP: its method, URI, version or a header is malformed \
         (a header value may not hold control characters such as NUL)",
    ),
    (
        b"HTTP/1.1 414 ",
        "URI_TOO_LONG",
        "The request's URI is too long",
    ),
    (
        b"HTTP/1.1 431 ",
        "HEADERS_TOO_LARGE",
        "The request's headers are too large",
    ),
];

/// The answer to write instead of `written`, when `written` is one of hyper's bodiless
/// parse-error answers.
fn replacement(written: &[u8]) -> Option<Vec<u8>> {
    let (_, code, message) = PARSE_ERRORS
        .iter()
        .find(|(status, _, _)| written.starts_with(status))?;
    let head_len = written
        .windows(HEAD_END.len())
        .position(|w| w == HEAD_END)?;
    let head = std::str::from_utf8(&written[..head_len]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut empty = false;
    let mut kept = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-type") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            empty = value.trim() == "0";
        } else if !name.eq_ignore_ascii_case("connection") {
            kept.push(line);
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    })
    .to_string();
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for line in kept {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes what is left of the replacement answer, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, done)) = &mut self.pending {
            if *done == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &answer[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `written` in place of hyper's answer when it is one to replace: it counts as
    /// written whole, and the replacement is written instead.
    fn poll_replace(
        &mut self,
        cx: &mut Context<'_>,
        written: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        let answer = replacement(written)?;
        self.pending = Some((answer, 0));
        Some(match self.poll_pending(cx) {
            // The rest goes out on the next write, flush or shutdown, which hyper makes.
            Poll::Pending | Poll::Ready(Ok(())) => Poll::Ready(Ok(written.len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(replaced) = this.poll_replace(cx, buf) {
            return replaced;
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper writes a bodiless answer's head as one slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(replaced) = this.poll_replace(cx, first) {
                return replaced;
            }
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_parse_error_gets_a_json_body() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 12:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper).expect("replaced")).expect("utf-8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(
            head.contains("\r\ndate: Thu, 03 Dec 2026 12:00:00 GMT"),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["errors"][0]["extensions"]["code"], "MALFORMED_REQUEST");
    }

    #[test]
    fn the_routers_answers_are_left_alone() {
        for written in [
            // an error with its JSON body
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            // not empty
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            // not an error hyper makes
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            // a head cut short, or a body
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"data\":null}",
        ] {
            assert!(
                replacement(written).is_none(),
                "{}",
                String::from_utf8_lossy(written)
            );
        }
    }
}
