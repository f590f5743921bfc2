//! Document routes: reads (conditional), writes, one batched metadata check.

use super::{error_from_body, Api, DocumentFetch};
use gloo_net::http::Request;
use monodit_core::api::{BatchMetaRequest, BatchMetaResponse, DocumentMeta, PutDocument};
use monodit_core::routes;
use monodit_core::{Error, ErrorCode};

impl Api {
    /// `GET /v1/documents/{bucketId}`, conditional on `if_none_match` (a version we hold).
    pub async fn document(
        &self,
        bucket_id: &str,
        if_none_match: Option<u64>,
    ) -> Result<DocumentFetch, Error> {
        let what = "get document";
        // `missing=empty`: a never-written bucket answers 204, not a 404 the browser would
        // log as a failed request (older servers still answer 404, handled below).
        let mut builder = self.authed(Request::get(
            &self.url(&format!("{}?missing=empty", routes::document(bucket_id))),
        ));
        if let Some(v) = if_none_match {
            builder = builder.header("If-None-Match", &format!("\"{v}\""));
        }
        self.counters
            .document_gets
            .set(self.counters.document_gets.get() + 1);
        let resp = self.send(what, builder, None).await?;
        match resp.status() {
            304 => Ok(DocumentFetch::NotModified),
            204 => Ok(DocumentFetch::Missing),
            404 => {
                // A 404 with a NOT_FOUND body is "never written"; anything else is an error.
                let text = Self::read_text(what, &resp).await?;
                let err = error_from_body(404, &text);
                if err.code == ErrorCode::NotFound {
                    Ok(DocumentFetch::Missing)
                } else {
                    Err(err)
                }
            }
            _ => Self::parse(what, resp).await.map(DocumentFetch::Fresh),
        }
    }

    /// `GET /v1/documents/{bucketId}/meta`.
    pub async fn document_meta(&self, bucket_id: &str) -> Result<DocumentMeta, Error> {
        self.get_json("document meta", &routes::document_meta(bucket_id))
            .await
    }

    /// `PUT /v1/documents/{bucketId}`.
    pub async fn put_document(
        &self,
        bucket_id: &str,
        body: &PutDocument,
    ) -> Result<DocumentMeta, Error> {
        self.counters
            .document_puts
            .set(self.counters.document_puts.get() + 1);
        let url = self.url(&routes::document(bucket_id));
        self.send_json("put document", Request::put(&url), body)
            .await
    }

    /// `POST /v1/meta`: metadata of many buckets in one request.
    pub async fn batch_meta(&self, req: &BatchMetaRequest) -> Result<BatchMetaResponse, Error> {
        self.counters.meta.set(self.counters.meta.get() + 1);
        self.send_json(
            "batch meta",
            Request::post(&self.url(routes::BATCH_META)),
            req,
        )
        .await
    }
}
