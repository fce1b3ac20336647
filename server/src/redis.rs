//! The optional Redis connection pool (bb8-redis). Redis carries only what may be lost (rate
//! counters, cache, pub/sub fan-out); durable state lives in the database. The pool is built
//! without connecting, so a Redis that is down at start-up does not stop the server: health then
//! reports `"degraded"` and callers fall back to in-process implementations.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// How long a caller waits for a pooled connection before treating Redis as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn pool(url: &str) -> Result<RedisPool, redis::RedisError> {
    let manager = RedisConnectionManager::new(url)?;
    Ok(bb8::Pool::builder()
        .max_size(16)
        .min_idle(None)
        .connection_timeout(CONNECT_TIMEOUT)
        .test_on_check_out(false)
        .build_unchecked(manager))
}

/// `PING` through the pool, bounded by `timeout`.
pub async fn ping(pool: &RedisPool, timeout: Duration) -> bool {
    let attempt = async {
        let mut conn = pool.get().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut *conn)
            .await
            .ok()
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(pong)) if pong == "PONG")
}
