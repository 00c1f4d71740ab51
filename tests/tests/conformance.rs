//! The storage ports' conformance suite on DynamoDB (moto): the same checks the
//! in-memory fakes pass in `shared`'s unit tests, so the two cannot drift.

use integration_tests::TestStack;
use shared::store::conformance;

#[tokio::test]
async fn dynamodb_meets_the_delivery_ledger_contract() {
    let stack = TestStack::start().await;
    conformance::ledger(&stack.services.store).await;
}

#[tokio::test]
async fn dynamodb_meets_the_rate_counters_contract() {
    let stack = TestStack::start().await;
    conformance::counters(&stack.services.store).await;
}

#[tokio::test]
async fn dynamodb_meets_the_chat_directory_contract() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    stack.install_chat(&id, "cid-conformance==", "Ops").await;
    conformance::chats(&stack.services.store, &id, "cid-conformance==").await;
}
