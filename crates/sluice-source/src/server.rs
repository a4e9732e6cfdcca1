//! The artifact HTTP server: serves `<storage>/<path>` at `/<path>`, as
//! source-controller's file server does, so any consumer (Flux's
//! kustomize-controller included) can download `status.artifact.url`.
//!
//! A file is streamed from disk in [`CHUNK_BYTES`] pieces with its
//! `Content-Length`, so serving an artifact costs a buffer per download, not
//! the artifact's size, however large it is and however many consumers fetch
//! it at once.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::AsyncReadExt;

use crate::storage::safe_join;

/// The size of the pieces a file is sent in.
pub const CHUNK_BYTES: usize = 64 << 10;

/// A router serving the files under `storage` (read-only; hidden paths such
/// as the `.work` scratch area and temporaries are never served).
pub fn artifact_router(storage: impl Into<PathBuf>) -> Router {
    Router::new()
        .route("/{*path}", get(serve))
        .with_state(Arc::new(storage.into()))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn serve(State(root): State<Arc<PathBuf>>, Path(path): Path<String>) -> Response {
    let Some(file) = safe_join(&root, &path) else {
        return not_found();
    };
    let opened = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        // A directory opens on Linux; anything else is a server-side fault.
        Err(e) => return internal_error(&file, &e),
    };
    // The length and kind of what was opened, not of the path (which a
    // garbage collection may remove or a new artifact replace meanwhile).
    let len = match opened.metadata().await {
        Ok(md) if md.is_file() => md.len(),
        Ok(_) => return not_found(),
        Err(e) => return internal_error(&file, &e),
    };
    let mut resp = Response::new(Body::from_stream(file_stream(opened, len)));
    let ct = if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
        "application/x-gzip"
    } else {
        "application/octet-stream"
    };
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// The first `len` bytes of `file`, in pieces of at most [`CHUNK_BYTES`].
/// A file that ends early is an error (the response is cut off rather than
/// shorter than its `Content-Length`); bytes past `len` are not sent.
fn file_stream(
    file: tokio::fs::File,
    len: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = usize::try_from(left).map_or(CHUNK_BYTES, |l| l.min(CHUNK_BYTES));
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the artifact became shorter while it was being served",
            ));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
    })
}

fn internal_error(file: &std::path::Path, e: &std::io::Error) -> Response {
    tracing::warn!(path = %file.display(), "serving artifact: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 internal server error\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `root` on 127.0.0.1 and returns the base URL.
    async fn start(root: &std::path::Path) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = artifact_router(root);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn files_are_streamed_with_their_length() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("gitrepository/ns/app");
        std::fs::create_dir_all(&dir).unwrap();
        // Several chunks and a partial one, with bytes that are not text.
        let len = CHUNK_BYTES * 40 + 12345;
        let mut data = Vec::with_capacity(len);
        let mut x: u32 = 0x1234_5678;
        while data.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push((x >> 24) as u8);
        }
        std::fs::write(dir.join("abc.tar.gz"), &data).unwrap();
        std::fs::write(dir.join("empty.txt"), b"").unwrap();
        std::fs::create_dir_all(root.path().join(".work")).unwrap();
        std::fs::write(root.path().join(".work/secret"), b"no").unwrap();
        let base = start(root.path()).await;
        crate::git::install_crypto_provider();
        let client = reqwest::Client::new();

        let resp = client
            .get(format!("{base}/gitrepository/ns/app/abc.tar.gz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.content_length(), Some(len as u64));
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/x-gzip"
        );
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len(), len);
        assert!(body[..] == data[..], "the bytes served differ");

        let resp = client
            .head(format!("{base}/gitrepository/ns/app/abc.tar.gz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get(header::CONTENT_LENGTH).unwrap(),
            &len.to_string()
        );

        let resp = client
            .get(format!("{base}/gitrepository/ns/app/empty.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.content_length(), Some(0));
        assert!(resp.bytes().await.unwrap().is_empty());

        for missing in [
            "gitrepository/ns/app/none.tar.gz",
            "gitrepository/ns/app",
            ".work/secret",
            "gitrepository/../.work/secret",
        ] {
            let resp = client
                .get(format!("{base}/{missing}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{missing}");
        }
    }

    #[tokio::test]
    async fn a_file_is_sent_up_to_the_length_it_had_when_opened() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a.bin");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        use futures::TryStreamExt;
        let got: Vec<Bytes> = file_stream(file, 600).try_collect().await.unwrap();
        assert_eq!(got.iter().map(Bytes::len).sum::<usize>(), 600);
        let file = tokio::fs::File::open(&path).await.unwrap();
        let short: std::io::Result<Vec<Bytes>> = file_stream(file, 2000).try_collect().await;
        assert_eq!(short.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
