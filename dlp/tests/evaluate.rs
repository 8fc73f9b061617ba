//! The rule engine through its public API: the shipped rules on realistic text in several
//! languages, supporting keywords near and far, count thresholds, scan limits, scopes, the ACL
//! rules, rule files and folders with their errors, and the JSON evidence that never holds a
//! whole number.

use std::path::Path;

use bonnie_dlp::{
    AclChange, Action, Confidence, DlpError, EventKind, Folder, Level, PartKind, RuleHit, RuleSet,
    ScanInput, ScanPart, Settings,
};

fn default_rules() -> RuleSet {
    RuleSet::default_rules(&Settings::default()).expect("the shipped rules compile")
}

fn parse_rules(text: &str) -> RuleSet {
    RuleSet::parse(text, Path::new("test.toml"), &Settings::default()).expect("the rules compile")
}

fn body(text: &str) -> ScanInput<'_> {
    ScanInput {
        parts: vec![ScanPart::new(PartKind::Body, "body 1", text)],
        ..ScanInput::new(EventKind::Append)
    }
}

fn hit<'h>(hits: &'h [RuleHit], rule: &str) -> Option<&'h RuleHit> {
    hits.iter().find(|h| h.rule == rule)
}

fn invalid(text: &str) -> (Option<usize>, String) {
    match RuleSet::parse(text, Path::new("bad.toml"), &Settings::default()) {
        Err(DlpError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected a rule file error, got {other:?}"),
    }
}

#[test]
fn a_card_alone_is_medium_and_with_a_keyword_nearby_high() {
    let rules = default_rules();
    let alone = rules.evaluate(&body("Here you go: 4539 1488 0343 6467 as discussed."));
    let cards = hit(&alone, "payment-cards").expect("the card fires");
    assert_eq!(cards.confidence, Confidence(65));
    assert_eq!(cards.count, 1);
    let evidence = &cards.matches[0];
    assert_eq!(evidence.excerpt, "4539 **** **** 6467");
    assert_eq!(evidence.label.as_deref(), Some("visa"));
    assert_eq!(evidence.part, "body 1");
    assert_eq!(evidence.level, Level::Medium);
    assert!(evidence.keywords.is_empty());

    let near = rules.evaluate(&body(
        "My credit card number is 4539148803436467, exp 12/27.",
    ));
    let evidence = &hit(&near, "payment-cards").unwrap().matches[0];
    assert_eq!(evidence.confidence, Confidence(85));
    assert_eq!(evidence.excerpt, "4539********6467");
    assert_eq!(evidence.keywords[0].keyword, "credit card");
    assert_eq!(evidence.keywords[0].distance, 11);
}

#[test]
fn keywords_beyond_the_proximity_do_not_raise_confidence() {
    let filler = "lorem ipsum ".repeat(30); // 360 characters
    let text = format!("Visa\n{filler}4539148803436467");
    let hits = default_rules().evaluate(&body(&text));
    assert_eq!(
        hit(&hits, "payment-cards").unwrap().confidence,
        Confidence(65)
    );
    // Within 300 characters it does, counted in characters, not bytes (Cyrillic is two each).
    let filler = "ж".repeat(290);
    let text = format!("Visa {filler} 4539148803436467");
    let hits = default_rules().evaluate(&body(&text));
    let evidence = &hit(&hits, "payment-cards").unwrap().matches[0];
    assert_eq!(evidence.confidence, Confidence(85));
    assert_eq!(evidence.keywords[0].distance, 292);
    // A detector's own proximity.
    let near_only = parse_rules(
        r#"
        [detectors.card]
        kind = "payment_card"
        keywords = ["visa"]
        proximity = 5

        [[rules]]
        name = "cards"
        severity = "high"
        detectors = ["card"]
        min_confidence = "high"
        "#,
    );
    assert!(near_only.evaluate(&body("visa: 4539148803436467")).len() == 1);
    assert!(
        near_only
            .evaluate(&body("visa, the number: 4539148803436467"))
            .is_empty()
    );
}

#[test]
fn matches_in_german_russian_and_japanese_text() {
    let rules = default_rules();
    for (text, rule, keyword) in [
        (
            "Bitte belasten Sie meine Kreditkarte 5425 2334 3010 9903. Danke!",
            "payment-cards",
            "Kreditkarte",
        ),
        (
            "Номер карты: 4539148803436467, срок до 12/27.",
            "payment-cards",
            "Номер карты",
        ),
        (
            "カード番号は4539148803436467です。",
            "payment-cards",
            "カード番号",
        ),
        (
            "Unsere Bankverbindung: IBAN DE89 3704 0044 0532 0130 00, Commerzbank.",
            "ibans",
            "IBAN",
        ),
        ("Реквизиты: счёт DE89370400440532013000", "ibans", "счёт"),
        ("振込先の口座：DE89370400440532013000", "ibans", "口座"),
        (
            "Meine Steuer-ID lautet 86095742719.",
            "de-tax-id",
            "Steuer-ID",
        ),
        ("Her SSN is 536221234.", "us-ssn", "SSN"),
    ] {
        let hits = rules.evaluate(&body(text));
        let found = hit(&hits, rule).unwrap_or_else(|| panic!("{text}: {hits:?}"));
        assert_eq!(found.matches[0].keywords[0].keyword, keyword, "{text}");
        assert!(found.confidence >= Confidence(65), "{text}");
    }
}

#[test]
fn bare_national_ids_need_a_keyword_printed_ones_do_not() {
    let rules = default_rules();
    assert!(hit(&rules.evaluate(&body("Ticket 536221234 closed")), "us-ssn").is_none());
    assert!(hit(&rules.evaluate(&body("Ref 86095742719")), "de-tax-id").is_none());
    let printed = rules.evaluate(&body("Applicant 536-22-1234"));
    let ssn = hit(&printed, "us-ssn").unwrap();
    assert_eq!(ssn.confidence, Confidence(65));
    assert_eq!(ssn.matches[0].excerpt, "***-**-1234");
    let tax = rules.evaluate(&body("IdNr 86 095 742 719"));
    assert_eq!(hit(&tax, "de-tax-id").unwrap().confidence, Confidence(85));
    assert_eq!(
        hit(&tax, "de-tax-id").unwrap().matches[0].excerpt,
        "** *** *** *19"
    );
}

#[test]
fn false_positives_give_no_hit() {
    let text = "Order 20244539148803436467 shipped with UPS 1Z999AA10123456784 on 2024-12-01.\n\
                Call +49 30 12345678 or 030 1234567890. Test card 4111 1111 1111 1111.\n\
                Invoice INV-4539148803436467, IBAN DE89370400440532013001 (typo), SSN 666-12-3456, \
                Steuer-ID 86095742718, price 1.4539148803436467.";
    let hits = default_rules().evaluate(&body(text));
    assert!(hits.is_empty(), "{hits:#?}");
}

#[test]
fn min_count_counts_distinct_values() {
    let rules = parse_rules(
        r#"
        [[rules]]
        name = "card-lists"
        severity = "high"
        detectors = ["payment_card"]
        min_count = 2
        "#,
    );
    assert!(rules.evaluate(&body("4539148803436467")).is_empty());
    // The same card quoted twice is one card.
    assert!(
        rules
            .evaluate(&body("4539148803436467\n> 4539148803436467"))
            .is_empty()
    );
    let two = rules.evaluate(&body(
        "4539148803436467 and 5425233430109903 and 4539148803436467",
    ));
    assert_eq!(two[0].count, 2);
    assert_eq!(two[0].matches.len(), 2);
    assert_eq!(two[0].matches[0].count, 2);
    assert_eq!(two[0].matches[1].excerpt, "5425********9903");
}

#[test]
fn the_evidence_in_json_never_holds_the_number() {
    let text = "Card 4539 1488 0343 6467, IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-1234, Steuer-ID 86095742719";
    let hits = default_rules().evaluate(&body(text));
    assert_eq!(hits.len(), 4, "{hits:#?}");
    let json = serde_json::to_string(&hits).unwrap();
    for secret in [
        "4539148803436467",
        "1488 0343",
        "DE89370400440532013000",
        "3704 0044 0532",
        "536-22",
        "86095742719",
        "0957427",
    ] {
        assert!(!json.contains(secret), "{secret} in {json}");
    }
    let back: Vec<RuleHit> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, hits);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value[1]["rule"], "ibans");
    assert_eq!(
        value[1]["matches"][0]["excerpt"],
        "DE89 **** **** **** **** 00"
    );
    assert_eq!(value[1]["matches"][0]["kind"], "iban");
    assert_eq!(value[1]["matches"][0]["label"], "DE");
    assert_eq!(value[1]["actions"][0]["type"], "incident");
}

#[test]
fn parts_longer_than_the_limit_are_cut_and_the_hit_says_so() {
    let settings = Settings {
        max_part_bytes: 64,
        ..Settings::default()
    };
    let rules = RuleSet::default_rules(&settings).unwrap();
    let text = format!("card 4539148803436467 {} 5425233430109903", "x".repeat(100));
    let hits = rules.evaluate(&body(&text));
    assert_eq!(hits[0].count, 1);
    assert_eq!(hits[0].truncated_parts, ["body 1"]);
    // A cut inside a multi-byte character keeps the text valid.
    let japanese = format!("4539148803436467 {}", "日本語".repeat(30));
    assert_eq!(rules.evaluate(&body(&japanese))[0].count, 1);
}

#[test]
fn regex_and_keyword_detectors_and_what_is_scanned() {
    let rules = parse_rules(
        r#"
        [detectors.project]
        kind = "regex"
        pattern = "PRJ-[0-9]{6}"
        keywords = ["project"]

        [detectors.secret]
        kind = "keywords"
        words = ["streng vertraulich", "strictly confidential"]

        [[rules]]
        name = "projects"
        severity = "low"
        detectors = ["project"]
        min_confidence = "low"
        scan = ["body"]

        [[rules]]
        name = "confidential"
        severity = "medium"
        detectors = ["secret"]
        scan = ["subject", "attachments"]
        actions = [{ type = "keyword" }, { type = "webhook", url = "https://hooks.example.org/dlp" }]
        "#,
    );
    let input = ScanInput {
        parts: vec![
            ScanPart::new(PartKind::Subject, "subject", "STRENG  VERTRAULICH: Q3"),
            ScanPart::new(
                PartKind::Body,
                "body 1",
                "See PRJ-123456 and the project PRJ-654321.",
            ),
            ScanPart::new(
                PartKind::Attachment,
                "attachment 2 (a.txt)",
                "PRJ-999999 strictly confidential",
            ),
        ],
        ..ScanInput::new(EventKind::Delivery)
    };
    let hits = rules.evaluate(&input);
    let projects = hit(&hits, "projects").unwrap();
    assert_eq!(
        projects.count, 2,
        "the attachment is not scanned by this rule"
    );
    assert_eq!(
        projects.matches[0].confidence,
        Confidence(65),
        "`project` is near both"
    );
    assert_eq!(projects.matches[0].excerpt, "PR*-****56");
    let confidential = hit(&hits, "confidential").unwrap();
    assert_eq!(confidential.matches[0].excerpt, "STRENG  VERTRAULICH");
    assert_eq!(confidential.matches[1].part, "attachment 2 (a.txt)");
    assert_eq!(
        confidential.actions,
        [
            Action::Keyword {
                name: "$DLP".into()
            },
            Action::Webhook {
                url: "https://hooks.example.org/dlp".into()
            }
        ]
    );
    // Unvalidated patterns alone are low: a medium rule does not fire on them.
    let medium = rules.evaluate(&body("PRJ-123456"));
    assert_eq!(medium[0].confidence, Confidence(40));
}

#[test]
fn scopes_select_events_users_folders_and_directions() {
    let settings = Settings {
        local_domains: vec!["example.org".into()],
        ..Settings::default()
    };
    let rules = RuleSet::parse(
        r#"
        [[rules]]
        name = "outbound-cards"
        severity = "high"
        detectors = ["payment_card"]
        [rules.scope]
        events = ["delivery", "append"]
        users = ["*@example.org"]
        exclude_users = ["billing@example.org"]
        folders = ["user/%/Sent", "shared/*"]
        direction = ["outbound"]
        "#,
        Path::new("scope.toml"),
        &settings,
    )
    .unwrap();
    let text = "4539148803436467";
    let event = |event, user, folder, to| ScanInput {
        event,
        user: Some(user),
        folder: Some(Folder {
            name: folder,
            ..Folder::default()
        }),
        sender: Some("alice@example.org"),
        recipients: vec![to],
        acl: None,
        parts: vec![ScanPart::new(PartKind::Body, "body 1", text)],
    };
    let fires = |input: ScanInput| !rules.evaluate(&input).is_empty();
    assert!(fires(event(
        EventKind::Append,
        "alice@example.org",
        "user/alice/Sent",
        "x@gmail.com"
    )));
    assert!(!fires(event(
        EventKind::Copy,
        "alice@example.org",
        "user/alice/Sent",
        "x@gmail.com"
    )));
    assert!(!fires(event(
        EventKind::Append,
        "bob@partner.com",
        "user/alice/Sent",
        "x@gmail.com"
    )));
    assert!(!fires(event(
        EventKind::Append,
        "billing@example.org",
        "user/alice/Sent",
        "x@gmail.com"
    )));
    assert!(!fires(event(
        EventKind::Append,
        "alice@example.org",
        "user/alice/Drafts",
        "x@gmail.com"
    )));
    assert!(!fires(event(
        EventKind::Append,
        "alice@example.org",
        "user/alice/Sent",
        "bob@example.org"
    )));
    assert!(fires(event(
        EventKind::Delivery,
        "alice@example.org",
        "shared/finance",
        "x@gmail.com"
    )));

    let shared = parse_rules(
        r#"
        [[rules]]
        name = "public-folders"
        severity = "high"
        detectors = ["iban"]
        scope = { shared = true, anyone = true }
        "#,
    );
    let mut input = body("DE89370400440532013000");
    input.event = EventKind::Copy;
    assert!(
        shared.evaluate(&input).is_empty(),
        "no folder, no shared scope"
    );
    input.folder = Some(Folder {
        name: "shared/public",
        owner: None,
        shared: true,
        readable_by_anyone: true,
    });
    assert_eq!(shared.evaluate(&input).len(), 1);
    input.folder.as_mut().unwrap().readable_by_anyone = false;
    assert!(shared.evaluate(&input).is_empty());
}

#[test]
fn acl_rules_fire_on_read_rights_for_anyone_or_a_foreign_group() {
    let rules = default_rules();
    let acl = |identifier, rights, owner_groups: Vec<&'static str>| ScanInput {
        user: Some("alice"),
        folder: Some(Folder {
            name: "user/alice/Customers",
            owner: Some("alice"),
            ..Folder::default()
        }),
        acl: Some(AclChange {
            identifier,
            rights,
            owner_groups,
        }),
        ..ScanInput::new(EventKind::Acl)
    };
    let hits = rules.evaluate(&acl("anyone", "lrs", vec![]));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].rule, "folder-readable-by-anyone");
    let evidence = hits[0].acl.as_ref().unwrap();
    assert_eq!(
        (evidence.folder.as_str(), evidence.identifier.as_str()),
        ("user/alice/Customers", "anyone")
    );
    assert_eq!(
        rules.evaluate(&acl("anonymous", "r", vec![]))[0].rule,
        "folder-readable-by-anyone"
    );
    assert!(
        rules.evaluate(&acl("anyone", "l", vec![])).is_empty(),
        "lookup is not reading"
    );
    assert_eq!(
        rules.evaluate(&acl("group:all-staff", "lr", vec!["sales"]))[0].rule,
        "folder-readable-by-a-group"
    );
    assert!(
        rules
            .evaluate(&acl("group:sales", "lr", vec!["sales"]))
            .is_empty()
    );
    assert!(
        rules
            .evaluate(&acl("bob", "lrswipkxtecda", vec![]))
            .is_empty()
    );
    // Content rules do not look at ACL events, ACL rules not at messages.
    assert!(rules.evaluate(&body("anyone lrs")).is_empty());
}

#[test]
fn rule_file_errors_name_the_line_and_the_key() {
    let (line, message) = invalid(
        "[[rules]]\nname = \"x\"\nseverity = \"high\"\ndetectors = [\"iban\"]\nmin_confidnce = \"low\"\n",
    );
    assert_eq!(line, Some(5));
    assert!(
        message.contains("unknown field `min_confidnce`"),
        "{message}"
    );

    let (line, message) = invalid(
        "\n[detectors.bad]\nkind = \"regex\"\npattern = \"PRJ-(\"\n\n[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"bad\"]\n",
    );
    assert_eq!(line, Some(4), "the pattern's line");
    assert!(
        message.contains("detector \"bad\": `pattern` does not compile"),
        "{message}"
    );

    let (_, message) =
        invalid("[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"cards\"]\n");
    assert!(
        message.contains("rule \"r\": `detectors` names \"cards\""),
        "{message}"
    );

    let (_, message) = invalid(
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"iban\"]\nactions = [{ type = \"webhook\", url = \"ftp://x\" }]\n",
    );
    assert!(message.contains("webhook url \"ftp://x\""), "{message}");

    let (line, message) = invalid(
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"iban\"]\nactions = [{ type = \"incident\", url = \"https://x\" }]\n",
    );
    assert_eq!(line, Some(5));
    assert!(message.contains("unknown field `url`"), "{message}");

    let (_, message) = invalid(
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"iban\"]\nactions = [{ type = \"page\" }]\n",
    );
    assert!(message.contains("unknown variant `page`"), "{message}");

    let (line, message) =
        invalid("[[rules]]\nname = \"r\"\nseverity = \"critical\"\ndetectors = [\"iban\"]\n");
    assert_eq!(line, Some(3));
    assert!(message.contains("unknown variant `critical`"), "{message}");

    let (_, message) = invalid(
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\nacl = \"anyone\"\ndetectors = [\"iban\"]\n",
    );
    assert!(message.contains("an ACL rule"), "{message}");

    let (_, message) = invalid("[detectors.d]\nkind = \"iban\"\npattern = \"x\"\n");
    assert!(
        message.contains("`pattern` is only for `regex` detectors"),
        "{message}"
    );

    // A pattern whose automaton would exceed its size limit is refused, not built.
    let (_, message) =
        invalid("[detectors.huge]\nkind = \"regex\"\npattern = \"\\\\w{1000}{1000}\"\n");
    assert!(
        message.contains("`pattern` does not compile") && message.contains("size limit"),
        "{message}"
    );

    // The error's text names the file and the line.
    let error = RuleSet::parse(
        "rules = 3",
        Path::new("/etc/bonnie/dlp/a.toml"),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("DLP rules /etc/bonnie/dlp/a.toml line 1: "),
        "{error}"
    );
}

#[test]
fn a_folder_of_rule_files_is_read_in_name_order_with_unique_rule_names() {
    let dir = std::env::temp_dir().join(format!("bonnie-dlp-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rule = |name: &str| {
        format!("[[rules]]\nname = \"{name}\"\nseverity = \"low\"\ndetectors = [\"iban\"]\n")
    };
    std::fs::write(dir.join("20-b.toml"), rule("b")).unwrap();
    std::fs::write(dir.join("10-a.toml"), rule("a")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rule file").unwrap();
    let set = RuleSet::load(&dir, &Settings::default()).unwrap();
    let names: Vec<&str> = set.rules().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    std::fs::write(dir.join("30-c.toml"), rule("a")).unwrap();
    let error = RuleSet::load(&dir, &Settings::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("30-c.toml")
            && error.contains("taken by a rule of")
            && error.contains("10-a.toml"),
        "{error}"
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = RuleSet::load(&empty, &Settings::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no *.toml rule file"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_delivery_without_a_user_is_in_the_scope_of_its_folders_owner() {
    let rules = parse_rules(
        r#"
        [[rules]]
        name = "finance-inboxes"
        severity = "medium"
        detectors = ["iban"]
        scope = { users = ["finance-*"], events = ["delivery"] }
        "#,
    );
    let delivery = |owner| ScanInput {
        folder: Some(Folder {
            name: "user/x/INBOX",
            owner: Some(owner),
            ..Folder::default()
        }),
        ..body("IBAN DE89370400440532013000")
    };
    let mut to_finance = delivery("finance-emea@example.org");
    to_finance.event = EventKind::Delivery;
    assert_eq!(rules.evaluate(&to_finance).len(), 1);
    let mut to_sales = delivery("sales@example.org");
    to_sales.event = EventKind::Delivery;
    assert!(rules.evaluate(&to_sales).is_empty());
}

#[test]
fn a_rule_set_is_shared_between_threads() {
    fn shared<T: Send + Sync>(_: &T) {}
    shared(&default_rules());
}
