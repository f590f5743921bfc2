//! hyper's own answers to requests it cannot parse, in the server's `{code, message}` shape.
//!
//! A malformed `Content-Length`, an invalid header or request line, an oversized head or URI
//! never reaches the router: hyper answers it itself with an empty `400`, `431` or `414` and
//! closes the connection, and offers no hook to change that answer. [`CodedParseErrors`] wraps
//! the socket and, when hyper writes exactly such an automatic head, writes the same status
//! with a JSON error body instead. Every other byte passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose hyper-generated parse-error answers carry a coded JSON body.
pub struct CodedParseErrors<I> {
    inner: I,
    /// The JSON answer being written in place of hyper's, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<I> CodedParseErrors<I> {
    /// Wraps a connection's socket.
    pub fn new(inner: I) -> Self {
        CodedParseErrors {
            inner,
            replacing: None,
        }
    }
}

/// The coded answer for one of hyper's automatic heads, or `None` for any other bytes.
/// hyper writes such a head alone, with exactly these headers, and no handler answer has
/// `connection: close` first with an empty body.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > 256 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let (status_line, rest) = text.split_once("\r\n")?;
    let rest = rest.strip_prefix("connection: close\r\ncontent-length: 0\r\n")?;
    let date = rest.strip_prefix("date: ")?.strip_suffix("\r\n\r\n")?;
    if date.contains("\r\n") {
        return None;
    }
    let (code, message) = match status_line {
        "HTTP/1.1 400 Bad Request" => (
            monodit_core::ErrorCode::InvalidArgument,
            "malformed HTTP request (request line, a header name or value, or Content-Length)",
        ),
        "HTTP/1.1 414 URI Too Long" => (
            monodit_core::ErrorCode::PayloadTooLarge,
            "request URI too long",
        ),
        "HTTP/1.1 431 Request Header Fields Too Large" => (
            monodit_core::ErrorCode::PayloadTooLarge,
            "request headers too large",
        ),
        _ => return None,
    };
    let body = serde_json::to_vec(&monodit_core::Error::new(code, message)).ok()?;
    let mut out = format!(
        "{status_line}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\ncontent-length: {}\r\ndate: {date}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<I: AsyncRead + Unpin> AsyncRead for CodedParseErrors<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CodedParseErrors<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match replacement(buf) {
                Some(answer) => this.replacing = Some((answer, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper calls again with the same head until it is reported written; report it only
        // once the whole replacement is out.
        if let Some((answer, written)) = &mut this.replacing {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        this.replacing = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored, so hyper writes each head as one contiguous buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_hyper_heads_are_replaced() {
        let head = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
                     date: Thu, 03 Dec 2026 14:13:47 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(head).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.ends_with(r#"{"code":"INVALID_ARGUMENT","message":"malformed HTTP request (request line, a header name or value, or Content-Length)"}"#), "{out}");
        let body_len = out.split_once("\r\n\r\n").unwrap().1.len();
        assert!(out.contains(&format!("content-length: {body_len}\r\n")));
        // A handler's answer, body bytes, or a head with other headers pass through.
        assert!(replacement(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n"
        )
        .is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}").is_none());
        assert!(replacement(b"{\"value\":1}").is_none());
    }
}
