//! Stripe billing: checkout and the portal against a fake Stripe API (the server maps a plan to
//! its price; one customer per organization; OWNER only), and the webhook — signed the way
//! Stripe signs, replayed, forged, stale, out of order — moving the plan, the status and the
//! grace period; without Stripe keys, a clear "not configured" and everything else working.

use chrono::Utc;
use devsignal_tests::fakes::stripe::{self as fake, FakeStripe};
use devsignal_tests::{Session, TestApp, assert_code, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

const SECRET: &str = "whsec_test_devsignal";
const KEY: &str = "sk_test_devsignal";
const SUBSCRIPTION: &str = "{ subscription { plan effectivePlan status currentPeriodEnd cancelAtPeriodEnd graceEndsAt hasCustomer billingConfigured } }";
const USAGE: &str = "{ usage { plan enforced month contacts { current limit percentage } signalsPerMonth { current limit } members { current limit } aiBriefsPerMonth { limit } integrations { limit } } }";
const CHECKOUT: &str = "mutation($plan: PlanId!) { createCheckoutSession(plan: $plan) { id url } }";

async fn billing_app(extra: &[(&str, &str)]) -> (TestApp, FakeStripe) {
    let stripe = FakeStripe::start(KEY, &["price_pro_m", "price_growth_m", "price_scale_m"]).await;
    let mut vars = extra.to_vec();
    vars.extend([
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("STRIPE_PRICE_PRO", "price_pro_m"),
        ("STRIPE_PRICE_GROWTH", "price_growth_m"),
        ("STRIPE_PRICE_SCALE", "price_scale_m"),
        ("STRIPE_API_URL", &stripe.url),
    ]);
    let app = spawn_app_with(&vars).await;
    (app, stripe)
}

/// Posts `event` to the webhook as Stripe would, signed now with `secret`.
async fn deliver(app: &TestApp, event: &Value, secret: &str) -> (u16, Value) {
    let body = event.to_string();
    let sig = fake::signed(secret, Utc::now().timestamp(), &body);
    post_raw(app, &body, Some(&sig)).await
}

async fn post_raw(app: &TestApp, body: &str, signature: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/v1/billing/webhook"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn subscription(app: &TestApp, s: &Session) -> Value {
    ok(&app.graphql_as(s.token(), SUBSCRIPTION, json!({})).await)["subscription"].clone()
}

fn org_of(s: &Session) -> String {
    s.organization_id.to_string()
}

#[tokio::test]
async fn checkout_maps_the_plan_to_its_price_and_creates_one_customer() {
    // Limits off, so the owner can add an admin on the free plan.
    let (app, stripe) = billing_app(&[("PLAN_ENFORCEMENT", "false")]).await;
    let owner = app.register("owner@bill.test", "Bill").await;
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "GROWTH"}))
        .await;
    let url = ok(&r)["createCheckoutSession"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("https://checkout.stripe.com/"), "{url}");
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "PRO"}))
        .await;
    ok(&r);
    // One customer for the organization, created with an idempotency key and its id.
    let customers = stripe.customers();
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_eq!(customers[0]["metadata"]["organizationId"], org_of(&owner));
    let hits = stripe.hits();
    let created: Vec<_> = hits.iter().filter(|h| h.path == "/v1/customers").collect();
    assert_eq!(created.len(), 1);
    assert!(created[0].idempotency_key.is_some());
    assert!(hits.iter().all(|h| h.version.is_some()));
    let sessions: Vec<_> = hits
        .iter()
        .filter(|h| h.path == "/v1/checkout/sessions")
        .collect();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].form["line_items[0][price]"], "price_growth_m");
    assert_eq!(sessions[1].form["line_items[0][price]"], "price_pro_m");
    for s in &sessions {
        assert_eq!(s.form["mode"], "subscription");
        assert_eq!(s.form["metadata[organizationId]"], org_of(&owner));
        assert_eq!(
            s.form["subscription_data[metadata][organizationId]"],
            org_of(&owner)
        );
        assert!(s.form["success_url"].contains("/settings/billing"));
    }
    assert_eq!(subscription(&app, &owner).await["hasCustomer"], true);

    // The portal, for the same customer.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createBillingPortalSession { url } }",
            json!({}),
        )
        .await;
    assert!(
        ok(&r)["createBillingPortalSession"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.com/")
    );
    assert_eq!(stripe.customers().len(), 1);

    // The free plan needs no checkout; only the owner may start one; not with an API key.
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "FREE"}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["fields"][0]["field"], "plan");
    let admin = app.add_member(&owner, "admin@bill.test", "ADMIN").await;
    let r = app
        .graphql_as(admin.token(), CHECKOUT, json!({"plan": "PRO"}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let key = app.api_key(&owner, &["admin"]).await;
    let r = app
        .graphql_with_key(&key, CHECKOUT, json!({"plan": "PRO"}))
        .await;
    assert_code(&r, "FORBIDDEN");
    // A price id is never the client's to choose: the schema has no such argument.
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createCheckoutSession(plan: PRO, priceId: \"price_x\") { id } }",
            json!({}),
        )
        .await;
    assert_code(&r, "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn stripe_refusals_surface_as_upstream_errors() {
    let stripe = FakeStripe::start("sk_test_other", &["price_pro_m"]).await;
    let app = spawn_app_with(&[
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("STRIPE_PRICE_PRO", "price_pro_m"),
        ("STRIPE_API_URL", &stripe.url),
    ])
    .await;
    let owner = app.register("owner@refused.test", "Refused").await;
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "PRO"}))
        .await;
    assert_code(&r, "UPSTREAM_ERROR");
    let msg = r["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("STRIPE_SECRET_KEY"), "{msg}");
    // A plan without a configured price is a clear input error.
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "GROWTH"}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("STRIPE_PRICE_GROWTH")
    );
}

#[tokio::test]
async fn the_webhook_applies_each_event_once_in_order_with_a_grace_period() {
    let (app, stripe) = billing_app(&[]).await;
    let owner = app.register("owner@hook.test", "Hook").await;
    let other = app.register("owner@other-hook.test", "Other").await;
    let org = org_of(&owner);
    ok(&app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "GROWTH"}))
        .await);
    let customer = stripe.customers()[0]["id"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp();
    let period_end = now + 30 * 86_400;

    // Checkout completed: the subscription is retrieved from Stripe and applied.
    stripe.put_subscription(fake::subscription(
        "sub_1",
        &customer,
        "active",
        "price_growth_m",
        &org,
        period_end,
    ));
    let completed = fake::event(
        "evt_completed",
        "checkout.session.completed",
        now - 100,
        json!({"id": "cs_1", "object": "checkout.session", "mode": "subscription",
               "customer": customer, "subscription": "sub_1", "client_reference_id": org,
               "metadata": {"organizationId": org}}),
    );
    let (status, body) = deliver(&app, &completed, SECRET).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let s = subscription(&app, &owner).await;
    assert_eq!(s["plan"], "GROWTH");
    assert_eq!(s["effectivePlan"], "GROWTH");
    assert_eq!(s["status"], "ACTIVE");
    assert!(s["currentPeriodEnd"].is_string());
    let u = ok(&app.graphql_as(owner.token(), USAGE, json!({})).await)["usage"].clone();
    assert_eq!(u["plan"], "GROWTH");
    assert_eq!(u["enforced"], true, "Stripe keys turn enforcement on");
    assert_eq!(u["contacts"]["limit"], 100_000);
    assert_eq!(u["members"]["limit"], 25);
    // Another organization is untouched.
    assert_eq!(subscription(&app, &other).await["plan"], "FREE");

    // The same event again (a Stripe retry, or a replay): processed once.
    let (status, body) = deliver(&app, &completed, SECRET).await;
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(true)));

    // Forged, unsigned, stale and tampered deliveries change nothing.
    let downgrade = fake::event(
        "evt_forged",
        "customer.subscription.updated",
        now,
        fake::subscription(
            "sub_1",
            &customer,
            "active",
            "price_pro_m",
            &org,
            period_end,
        ),
    );
    let (status, body) = deliver(&app, &downgrade, "whsec_wrong").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
    let raw = downgrade.to_string();
    assert_eq!(post_raw(&app, &raw, None).await.0, 400);
    let stale = fake::signed(SECRET, now - 600, &raw);
    assert_eq!(post_raw(&app, &raw, Some(&stale)).await.0, 400);
    let good = fake::signed(SECRET, now, &raw);
    let tampered = raw.replace("price_pro_m", "price_scale_m");
    assert_eq!(post_raw(&app, &tampered, Some(&good)).await.0, 400);
    assert_eq!(subscription(&app, &owner).await["plan"], "GROWTH");
    // Several v1 signatures (a secret being rolled): any one that matches is enough.
    let other_sig = fake::signed("whsec_old", now, &raw);
    let both = format!("{other_sig},v1={}", &good[good.find("v1=").unwrap() + 3..]);
    let (status, _) = post_raw(&app, &raw, Some(&both)).await;
    assert_eq!(status, 200);
    assert_eq!(subscription(&app, &owner).await["plan"], "PRO");

    // Out of order: a newer "past due" arrives, then an older "active" — the older is ignored.
    let past_due = fake::event(
        "evt_past_due",
        "customer.subscription.updated",
        now + 20,
        fake::subscription(
            "sub_1",
            &customer,
            "past_due",
            "price_growth_m",
            &org,
            period_end,
        ),
    );
    assert_eq!(deliver(&app, &past_due, SECRET).await.0, 200);
    let older = fake::event(
        "evt_older",
        "customer.subscription.updated",
        now + 10,
        fake::subscription(
            "sub_1",
            &customer,
            "active",
            "price_scale_m",
            &org,
            period_end,
        ),
    );
    let (_, body) = deliver(&app, &older, SECRET).await;
    assert_eq!(body["outcome"], "ignored", "{body}");
    let s = subscription(&app, &owner).await;
    assert_eq!(s["status"], "PAST_DUE");
    assert_eq!(s["plan"], "GROWTH");
    // Within the grace period the plan's limits stay.
    assert_eq!(s["effectivePlan"], "GROWTH");
    assert!(s["graceEndsAt"].is_string());

    // Paid: active again.
    let paid = fake::event(
        "evt_paid",
        "invoice.paid",
        now + 30,
        json!({"id": "in_1", "object": "invoice", "customer": customer,
               "parent": {"subscription_details": {"subscription": "sub_1"}}}),
    );
    assert_eq!(deliver(&app, &paid, SECRET).await.1["outcome"], "applied");
    assert_eq!(subscription(&app, &owner).await["status"], "ACTIVE");

    // Canceled: the free plan's limits; an event of the same second does not revive it.
    let deleted = fake::event(
        "evt_deleted",
        "customer.subscription.deleted",
        now + 40,
        fake::subscription(
            "sub_1",
            &customer,
            "canceled",
            "price_growth_m",
            &org,
            period_end,
        ),
    );
    assert_eq!(
        deliver(&app, &deleted, SECRET).await.1["outcome"],
        "applied"
    );
    let late = fake::event(
        "evt_late",
        "customer.subscription.updated",
        now + 40,
        fake::subscription(
            "sub_1",
            &customer,
            "active",
            "price_growth_m",
            &org,
            period_end,
        ),
    );
    assert_eq!(deliver(&app, &late, SECRET).await.1["outcome"], "ignored");
    let s = subscription(&app, &owner).await;
    assert_eq!(s["status"], "CANCELED");
    assert_eq!(s["effectivePlan"], "FREE");
    let u = ok(&app.graphql_as(owner.token(), USAGE, json!({})).await)["usage"].clone();
    assert_eq!(u["contacts"]["limit"], 1_000);
    assert_eq!(u["members"]["limit"], 1);
}

#[tokio::test]
async fn past_due_beyond_the_grace_period_falls_to_the_free_plans_limits() {
    let (app, stripe) = billing_app(&[]).await;
    let owner = app.register("owner@grace.test", "Grace").await;
    let org = org_of(&owner);
    ok(&app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "PRO"}))
        .await);
    let customer = stripe.customers()[0]["id"].as_str().unwrap().to_owned();
    // The payment failed eight days ago (the default grace is seven).
    let then = Utc::now().timestamp() - 8 * 86_400;
    let sub = fake::subscription(
        "sub_g",
        &customer,
        "active",
        "price_pro_m",
        &org,
        then + 86_400,
    );
    let created = fake::event("evt_g1", "customer.subscription.created", then - 60, sub);
    assert_eq!(
        deliver(&app, &created, SECRET).await.1["outcome"],
        "applied"
    );
    let failed = fake::event(
        "evt_g2",
        "invoice.payment_failed",
        then,
        json!({"id": "in_g", "object": "invoice", "customer": customer, "subscription": "sub_g"}),
    );
    assert_eq!(deliver(&app, &failed, SECRET).await.1["outcome"], "applied");
    let s = subscription(&app, &owner).await;
    assert_eq!(s["plan"], "PRO");
    assert_eq!(s["status"], "PAST_DUE");
    assert_eq!(s["effectivePlan"], "FREE");
    let u = ok(&app.graphql_as(owner.token(), USAGE, json!({})).await)["usage"].clone();
    assert_eq!(u["plan"], "FREE");
    assert_eq!(u["signalsPerMonth"]["limit"], 5_000);

    // An invoice for a subscription the organization does not have changes nothing.
    let stray = fake::event(
        "evt_g3",
        "invoice.paid",
        then + 60,
        json!({"id": "in_x", "object": "invoice", "customer": customer, "subscription": "sub_other"}),
    );
    assert_eq!(deliver(&app, &stray, SECRET).await.1["outcome"], "ignored");
    assert_eq!(subscription(&app, &owner).await["status"], "PAST_DUE");
}

#[tokio::test]
async fn without_stripe_keys_billing_says_it_is_not_configured_and_nothing_is_limited() {
    let app = spawn_app().await;
    let owner = app.register("owner@selfhosted.test", "Self").await;
    let r = app
        .graphql_as(owner.token(), CHECKOUT, json!({"plan": "PRO"}))
        .await;
    assert_code(&r, "NOT_CONFIGURED");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("STRIPE_SECRET_KEY")
    );
    let r = app
        .graphql_as(
            owner.token(),
            "mutation { createBillingPortalSession { url } }",
            json!({}),
        )
        .await;
    assert_code(&r, "NOT_CONFIGURED");
    let (status, body) = post_raw(&app, "{}", Some("t=1,v1=00")).await;
    assert_eq!(status, 501);
    assert_eq!(body["error"]["code"], "NOT_CONFIGURED");
    let s = subscription(&app, &owner).await;
    assert_eq!(s["billingConfigured"], false);
    assert_eq!(s["plan"], "FREE");
    let u = ok(&app.graphql_as(owner.token(), USAGE, json!({})).await)["usage"].clone();
    assert_eq!(u["enforced"], false);
    assert!(u["contacts"]["limit"].is_null());
    assert!(u["members"]["limit"].is_null());
    // The plans are listed, none purchasable here.
    let r = app
        .graphql_as(
            owner.token(),
            "{ plans { id name monthlyUsd contacts signalsPerMonth members aiBriefsPerMonth integrations purchasable } }",
            json!({}),
        )
        .await;
    let plans = ok(&r)["plans"].as_array().unwrap().clone();
    let ids: Vec<&str> = plans.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["FREE", "PRO", "GROWTH", "SCALE"]);
    assert_eq!(plans[0]["contacts"], 1_000);
    assert_eq!(plans[1]["signalsPerMonth"], 100_000);
    assert!(plans[3]["contacts"].is_null());
    assert!(plans.iter().all(|p| p["purchasable"] == false));
}
