//! Lambda entry point of the event callback function.

use std::convert::Infallible;

use event_callback::EventCallback;
use lambda_http::{Error, Request, run, service_fn};
use shared::Services;
use shared::services::event_subscription::CallbackSettings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let handler = EventCallback::new(&services, CallbackSettings::default());
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(handler.handle(request).await)
    }))
    .await
}
