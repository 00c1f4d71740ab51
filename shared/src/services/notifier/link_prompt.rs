//! The `link_prompt` job: a 1:1 message asking a DingTalk user who clicked a card
//! button to associate their account.

use tracing::{instrument, warn};

use super::{JobError, Notifier};
use crate::dingtalk::AppCredentials;
use crate::domain::integration::Integration;
use crate::render::robot_markdown;

impl Notifier {
    /// Sends the association prompt to `user_id`.
    #[instrument(skip_all, fields(integration_id = %integration.id))]
    pub(super) async fn link_prompt(
        &self,
        integration: &Integration,
        user_id: &str,
    ) -> Result<(), JobError> {
        let app_url = format!(
            "{}/dingtalk/{}/app",
            self.base_url(integration),
            integration.id
        );
        let message = robot_markdown::link_prompt(
            &app_url,
            crate::render::strings::Strings::of(integration.locale),
        );
        let users = [user_id.to_string()];
        match self
            .dingtalk
            .send_one_to_one(AppCredentials::from(integration), &users, &message)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_retryable() => Err(JobError::Retry(err.to_string())),
            Err(err) => {
                warn!(error = %err, "link prompt not sent");
                Ok(())
            }
        }
    }
}
