//! Lambda entry point of the admin API function.

use std::convert::Infallible;

use admin_api::AdminApi;
use lambda_http::{Error, Request, run, service_fn};
use shared::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let handler = AdminApi::new(&services);
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(handler.handle(request).await)
    }))
    .await
}
