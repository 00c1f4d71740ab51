//! Lambda entry point of the H5 app function.

use std::convert::Infallible;

use h5_app::H5Page;
use lambda_http::{Error, Request, run, service_fn};
use shared::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let handler = H5Page::new(&services);
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(handler.handle(request).await)
    }))
    .await
}
