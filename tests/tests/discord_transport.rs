//! How serenity 0.12.5's REST client reaches the fake Discord API, and where its 429
//! handling lives. `HttpBuilder::proxy` rewrites `https://discord.com` in a URL only when
//! the rate limiter is disabled, and a client without the rate limiter does not retry a
//! 429. The bot keeps the rate limiter, so the harness reaches the fake through TLS
//! instead (see `keycheck_tests::discord_api`).

use keycheck_tests::discord_api::{BOT_TOKEN, Failure, FakeDiscord, transcript};
use serenity::http::{HttpBuilder, LightMethod, Request, Route};

const CURRENT_USER: &str = "GET /users/@me";

#[tokio::test]
async fn proxy_without_rate_limiter_reaches_fake() {
    let fake = FakeDiscord::start().await;
    let http = HttpBuilder::new(BOT_TOKEN).proxy(fake.proxy_url()).ratelimiter_disabled(true).build();
    let user = http.get_current_user().await.unwrap_or_else(|e| panic!("{e}\n{}", transcript(&fake.calls())));
    assert_eq!(user.name, "keycheck");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{}", transcript(&calls));
    assert_eq!(calls[0].route, CURRENT_USER);

    // Without the rate limiter, a 429 comes back as an error: nothing retries it.
    fake.fail_next(CURRENT_USER, 1, Failure::RateLimited { retry_after: 0.1 });
    let error = http.request(Request::new(Route::UserMe, LightMethod::Get)).await.unwrap_err();
    assert!(error.to_string().contains("429") || format!("{error:?}").contains("429"), "{error:?}");
    assert_eq!(fake.calls().len(), 2, "{}", transcript(&fake.calls()));
}

#[tokio::test]
async fn rate_limiter_retries_429_through_tls() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    assert!(http.ratelimiter.is_some(), "the harness keeps serenity's rate limiter");
    fake.fail_next(CURRENT_USER, 2, Failure::RateLimited { retry_after: 0.1 });
    let user = http.get_current_user().await.unwrap_or_else(|e| panic!("{e}\n{}", transcript(&fake.calls())));
    assert_eq!(user.name, "keycheck");
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200], "{}", transcript(&fake.calls()));
}
