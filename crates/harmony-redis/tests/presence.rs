//! The presence book on a private Redis: gateways' words combined, a gateway that stops
//! renewing swept by another, and a Redis that forgot noticed.

use std::time::Duration;

use harmony_core::ports::PresenceBook;
use harmony_core::presence::{Presence, Status};
use harmony_core::UserId;
use harmony_redis::{connect, Keys, RedisPresence};
use harmony_testkit::redis::PrivateRedis;

#[tokio::test]
async fn gateways_words_combine_and_a_silent_gateway_is_swept() -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let keys = Keys::new("p1:");
    let conn = connect(&redis.url()).await?;
    // a and b renew long before their word expires; c's expires a second after each renewal.
    let book = |ttl| RedisPresence::new(conn.clone(), keys.clone(), ttl);
    let [a, b] = [(); 2].map(|()| book(Duration::from_secs(60)));
    let c = book(Duration::from_millis(1000));
    for node in [&a, &b, &c] {
        let upkeep = node.upkeep().await?;
        assert!(upkeep.forgot_us, "a new gateway is not in the book yet");
        assert!(upkeep.changes.is_empty());
        assert!(!node.upkeep().await?.forgot_us, "renewed in time");
    }
    let (ann, bob, nobody) = (UserId::new(), UserId::new(), UserId::new());

    let online = a.set(ann, Status::Online).await?.expect("a change");
    assert_eq!((online.status, online.last_seen), (Status::Online, None));
    assert_eq!(b.set(ann, Status::Idle).await?, None, "still online on a");
    assert_eq!(
        a.set(ann, Status::Online).await?,
        None,
        "saying it twice changes nothing"
    );
    let idle = a.set(ann, Status::Offline).await?.expect("a change");
    assert_eq!(idle.status, Status::Idle, "only b's idle session is left");
    let gone = b.set(ann, Status::Offline).await?.expect("a change");
    assert_eq!(gone.status, Status::Offline);
    let seen = gone.last_seen.expect("when ann left");
    assert!((time::OffsetDateTime::now_utc() - seen).abs() < time::Duration::seconds(5));
    assert_eq!(
        a.get(&[ann, nobody]).await?,
        vec![gone, Presence::unknown(nobody)],
        "asked in order; someone never seen is offline with no last seen"
    );

    // c stops renewing with bob online on it (and on nothing else): another gateway's upkeep
    // clears it once its word expired.
    assert_eq!(
        c.set(bob, Status::Online).await?.map(|p| p.status),
        Some(Status::Online)
    );
    b.set(ann, Status::Online).await?;
    c.upkeep().await?;
    assert!(
        a.upkeep().await?.changes.is_empty(),
        "c's word still counts"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let swept = a.upkeep().await?;
    assert_eq!(swept.changes.len(), 1, "only bob changed: {swept:?}");
    assert_eq!(swept.changes[0].user_id, bob);
    assert_eq!(swept.changes[0].status, Status::Offline);
    assert!(swept.changes[0].last_seen.is_some());
    assert_eq!(a.get(&[bob]).await?[0].status, Status::Offline);
    assert!(
        a.upkeep().await?.changes.is_empty(),
        "a swept gateway is gone from the book"
    );
    assert_eq!(
        a.get(&[ann]).await?[0].status,
        Status::Online,
        "b's word still counts"
    );
    assert!(
        c.upkeep().await?.forgot_us,
        "the swept gateway learns it must say everything again"
    );
    Ok(())
}

#[tokio::test]
async fn a_redis_that_forgot_is_noticed_at_the_next_upkeep() -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let conn = connect(&redis.url()).await?;
    let book = RedisPresence::new(conn.clone(), Keys::new("p2:"), Duration::from_secs(15));
    book.upkeep().await?;
    let ann = UserId::new();
    book.set(ann, Status::Online).await?;
    let mut raw = conn.clone();
    redis::cmd("FLUSHALL").query_async::<()>(&mut raw).await?;
    assert_eq!(book.get(&[ann]).await?, vec![Presence::unknown(ann)]);
    assert!(book.upkeep().await?.forgot_us);
    let again = book.set(ann, Status::Online).await?.expect("told again");
    assert_eq!(again.status, Status::Online);
    Ok(())
}
