//! The artifact HTTP server: serves `<storage>/<path>` at `/<path>`, as
//! source-controller's file server does, so any consumer (Flux's
//! kustomize-controller included) can download `status.artifact.url`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::storage::safe_join;

/// A router serving the files under `storage` (read-only; hidden paths such
/// as the `.work` scratch area and temporaries are never served).
pub fn artifact_router(storage: impl Into<PathBuf>) -> Router {
    Router::new()
        .route("/{*path}", get(serve))
        .with_state(Arc::new(storage.into()))
}

async fn serve(State(root): State<Arc<PathBuf>>, Path(path): Path<String>) -> Response {
    let Some(file) = safe_join(&root, &path) else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    match tokio::fs::metadata(&file).await {
        Ok(md) if md.is_file() => {}
        _ => return (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
    match tokio::fs::read(&file).await {
        Ok(data) => {
            let mut resp = Response::new(Body::from(data));
            let ct = if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
                "application/x-gzip"
            } else {
                "application/octet-stream"
            };
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            resp
        }
        Err(e) => {
            tracing::warn!(path = %file.display(), "serving artifact: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 internal server error\n",
            )
                .into_response()
        }
    }
}
