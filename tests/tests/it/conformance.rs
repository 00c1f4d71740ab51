//! The storage ports' conformance suite on DynamoDB (moto): the same checks the
//! in-memory fakes pass in `shared`'s unit tests, so the two cannot drift.

use integration_tests::TestStack;
use shared::store::conformance;
use shared::store::ports::RateCounters;

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

/// Forty concurrent takers of a second with room for four: exactly four win, as
/// DynamoDB's conditional writes are atomic (moto runs through
/// `scripts/moto_server.py`, which makes its item operations so).
#[tokio::test]
async fn concurrent_conditional_writes_grant_exactly_the_limit() {
    let store = integration_tests::TestStack::start().await.services.store;
    for second in 0..3 {
        let takers: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_second("race", second, 4).await })
            })
            .collect();
        let mut granted = 0;
        for taker in takers {
            if taker.await.expect("join").expect("store") {
                granted += 1;
            }
        }
        assert_eq!(granted, 4, "second {second}");
    }
}

#[tokio::test]
async fn dynamodb_meets_the_incident_book_contract() {
    let stack = TestStack::start().await;
    conformance::incident_book(&stack.services.store).await;
}

/// A refused transaction writes none of its items (moto's own rollback copies whole
/// tables; `scripts/moto_server.py` restores only the items a transaction names).
#[tokio::test]
async fn a_refused_transaction_writes_nothing() {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let stack = TestStack::start().await;
    let table = stack.services.store.table().to_string();
    let put = |sk: &str, guarded: bool| {
        let mut put = Put::builder()
            .table_name(&table)
            .item("pk", AttributeValue::S("TX".into()))
            .item("sk", AttributeValue::S(sk.into()));
        if guarded {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        TransactWriteItem::builder()
            .put(put.build().expect("put"))
            .build()
    };
    let write = |items: Vec<TransactWriteItem>| {
        stack
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
    };
    write(vec![put("A", true)]).await.expect("first write");
    let before = stack.item_count().await;
    assert!(write(vec![put("A", true), put("B", false)]).await.is_err());
    assert_eq!(stack.item_count().await, before, "B was not written");
    write(vec![put("C", true), put("D", true)])
        .await
        .expect("both new");
    assert_eq!(stack.item_count().await, before + 2);
}
