//! The HTTP edge: the API error type and its mappings from service errors, and
//! (feature `lambda-http`) the request/response plumbing of the API Gateway handlers.

mod error;
#[cfg(feature = "lambda-http")]
mod lambda;

pub use error::ApiError;
#[cfg(feature = "lambda-http")]
pub use lambda::{
    body_bytes, json_body, json_response, path_segments, public_base_url, query_param,
    require_json_content,
};
