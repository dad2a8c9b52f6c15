//! The SSRF guard on `updateSettings(input: {webhookUrl})`: every IPv6 form that embeds a
//! non-public IPv4 address is refused like the IPv4 literal, and so are Teredo and NAT64
//! local-use addresses.

use super::*;

on_both_databases!(
    webhook_urls_whose_ipv6_literal_embeds_a_private_ipv4_are_refused,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        let refused = [
            ("http://[::127.0.0.1]/hook", "loopback"),
            ("http://[::ffff:127.0.0.1]:8080/hook", "loopback"),
            ("http://[::ffff:0:10.0.0.1]/hook", "private"),
            ("http://[2002:7f00:1::1]/hook", "loopback"),
            ("http://[2002:a9fe:a9fe::1]/latest/meta-data", "link-local"),
            (
                "http://[64:ff9b::169.254.169.254]/latest/meta-data",
                "link-local",
            ),
            ("http://[64:ff9b::a00:1]/hook", "private"),
            ("http://[64:ff9b:1::7f00:1]/hook", "NAT64 local-use"),
            (
                "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
                "Teredo tunnel",
            ),
        ];

        for (url, kind) in refused {
            // Act
            let error = app
                .err(
                    ALICE,
                    UPDATE_SETTINGS,
                    json!({ "i": { "webhookUrl": url } }),
                )
                .await;

            // Assert
            assert_bad_input(error.clone(), "input.webhookUrl");
            assert!(error.1.contains(kind), "{url}: {}", error.1);
        }
        assert_eq!(app.count("users").await, 0, "a refused URL writes nothing");
    }
);

on_both_databases!(
    webhook_urls_whose_ipv6_literal_embeds_a_public_ipv4_are_accepted,
    |t| {
        // Arrange
        let app = TestApp::on(t);

        // Act
        let data = app
            .ok(
                ALICE,
                UPDATE_SETTINGS,
                json!({ "i": { "webhookUrl": "https://[2002:808:808::1]/hook" } }),
            )
            .await;

        // Assert
        assert_eq!(
            data["updateSettings"]["webhookUrl"],
            "https://[2002:808:808::1]/hook"
        );
    }
);
