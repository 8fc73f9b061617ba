//! The Dutch BSN, Spanish DNI and NIE and French NIR detectors through the public API: numbers
//! computed from each checksum and published examples found in Dutch, Spanish and French text,
//! wrong check digits and letters, wrong lengths, longer digit runs, phone and order numbers
//! refused, bare numbers needing a keyword nearby, and excerpts that keep only the last two
//! characters.

use std::path::Path;

use bonnie_dlp::{
    Confidence, EventKind, PartKind, RuleHit, RuleSet, ScanInput, ScanPart, Settings,
};

fn default_rules() -> RuleSet {
    RuleSet::default_rules(&Settings::default()).expect("the shipped rules compile")
}

fn body(text: &str) -> ScanInput<'_> {
    ScanInput {
        parts: vec![ScanPart::new(PartKind::Body, "body 1", text)],
        ..ScanInput::new(EventKind::Append)
    }
}

/// The hit of the shipped rule `rule` on `text`, if any.
fn hit(text: &str, rule: &str) -> Option<RuleHit> {
    default_rules()
        .evaluate(&body(text))
        .into_iter()
        .find(|h| h.rule == rule)
}

/// The BSN whose first eight digits are `first`, if the 11-proof leaves a digit for the ninth.
fn bsn(first: u32) -> Option<String> {
    let digits: Vec<u32> = format!("{first:08}")
        .bytes()
        .map(|c| u32::from(c - b'0'))
        .collect();
    let weighted: u32 = digits.iter().zip((2..=9).rev()).map(|(d, w)| d * w).sum();
    let check = weighted % 11;
    (check < 10).then(|| format!("{first:08}{check}"))
}

/// The DNI of `number` (up to eight digits) with its check letter.
fn dni(number: u32) -> String {
    let letters = b"TRWAGMYFPDXBNJZSQVHLCKE";
    format!("{number:08}{}", letters[(number % 23) as usize] as char)
}

/// The NIR of its thirteen first digits, printed in its groups, with its key.
fn nir(number: u64) -> String {
    let d = format!("{number:013}");
    format!(
        "{} {} {} {} {} {} {:02}",
        &d[..1],
        &d[1..3],
        &d[3..5],
        &d[5..7],
        &d[7..10],
        &d[10..13],
        97 - number % 97
    )
}

#[test]
fn computed_and_published_bsns_in_dutch_text() {
    let mut numbers: Vec<String> = (0..40)
        .filter_map(|i| bsn(10_000_000 + i * 2_245_671))
        .collect();
    assert!(numbers.len() > 30);
    // The examples of the Dutch government's test documentation.
    numbers.extend(["111222333".to_string(), "123456782".to_string()]);
    for number in &numbers {
        let text = format!(
            "Geachte heer, uw burgerservicenummer (BSN) is {number}. Met vriendelijke groet"
        );
        let found = hit(&text, "nl-bsn").unwrap_or_else(|| panic!("{text}"));
        // Bare digits with a keyword: one level below high.
        assert_eq!(found.confidence, Confidence(65), "{text}");
        assert_eq!(found.matches[0].excerpt, format!("*******{}", &number[7..]));
        assert_eq!(found.matches[0].keywords[0].keyword, "BSN");
    }
    // Printed in its groups it needs no keyword.
    let printed = hit("Nummer 1112 22 333 op de pas", "nl-bsn").unwrap();
    assert_eq!(printed.confidence, Confidence(65));
    assert_eq!(printed.matches[0].excerpt, "**** ** *33");
    assert_eq!(
        hit("Sofinummer: 1112 22 333", "nl-bsn").unwrap().confidence,
        Confidence(85)
    );
}

#[test]
fn bsns_with_a_wrong_check_digit_length_or_bounds_are_refused() {
    for text in [
        "BSN 123456783", // 11-proof
        "BSN 111222334",
        "BSN 12345678",                         // eight digits
        "BSN 1234567820",                       // ten digits
        "BSN 91234567829",                      // inside a longer run
        "BSN NL123456782",                      // an identifier's tail
        "BSN 123456782-01",                     // an identifier's head
        "BSN +31 123456782",                    // a phone number
        "BSN? Bel 06-12345678 of 020 123 4567", // Dutch mobile and landline numbers
        "Bestelnummer 111222333",               // bare, no keyword
    ] {
        assert!(hit(text, "nl-bsn").is_none(), "{text}");
    }
}

#[test]
fn computed_and_published_dnis_and_nies_in_spanish_text() {
    let mut numbers: Vec<String> = (0..40).map(|i| dni(1_000_000 + i * 2_468_013)).collect();
    // The examples everyone uses: 12345678Z and the NIEs X1234567L, Y1234567X, Z1234567R.
    numbers.extend(["12345678Z", "X1234567L", "Y1234567X", "Z1234567R"].map(String::from));
    for number in &numbers {
        let text = format!("Estimado cliente: su DNI es {number}, ¿es correcto?");
        let found = hit(&text, "es-dni").unwrap_or_else(|| panic!("{text}"));
        let nie = number.starts_with(['X', 'Y', 'Z']);
        assert_eq!(
            found.confidence,
            Confidence(if nie { 85 } else { 65 }),
            "{text}"
        );
        assert_eq!(found.matches[0].excerpt, format!("*******{}", &number[7..]));
    }
    // The letter after a dash, a NIE's after dashes, lower case: one value each.
    let found = hit(
        "Número de identidad de extranjero: X-1234567-L; documento nacional de identidad 12345678-Z o 12345678z",
        "es-dni",
    )
    .unwrap();
    assert_eq!(found.count, 2, "{found:#?}");
    assert_eq!(found.matches[0].excerpt, "*-******7-L");
    // A NIE's shape is its own: it needs no keyword; a DNI does.
    assert_eq!(
        hit("Titular X1234567L", "es-dni").unwrap().confidence,
        Confidence(65)
    );
    assert!(hit("Referencia 12345678Z", "es-dni").is_none());
}

#[test]
fn dnis_with_a_wrong_letter_length_or_bounds_are_refused() {
    for text in [
        "DNI 12345678A",  // letter
        "DNI 12345678",   // no letter
        "DNI 1234567Z",   // seven digits
        "DNI 123456789Z", // nine
        "DNI 12345678ZA", // a longer word
        "DNI 12345678Z9",
        "DNI ES12345678Z",                      // an identifier's tail
        "DNI 12345678Z-01",                     // an identifier's head
        "NIE W1234567L",                        // not a NIE prefix
        "NIE X12345678L",                       // a NIE has seven digits
        "DNI 00000000T",                        // nobody's
        "DNI: tel. 912345678 y 12345670 y más", // Spanish phones; "y" is "and"
        "Pedido 12345678Z",                     // no keyword
    ] {
        assert!(hit(text, "es-dni").is_none(), "{text}");
    }
}

#[test]
fn computed_and_published_nirs_in_french_text() {
    let mut numbers: Vec<String> = (0..30)
        .map(|i| nir(1_840_575_123_001 + i * 10_000_010_011))
        .collect();
    // Published examples: the social security's leaflet number and Wikipedia's.
    numbers.extend(["1 84 12 76 451 089 46", "2 55 08 14 168 025 38"].map(String::from));
    // Corsica: 2A counts as 19, 2B as 18.
    numbers.push(format!(
        "1 85 05 2A 004 012 {:02}",
        97 - 1_850_519_004_012u64 % 97
    ));
    numbers.push(format!(
        "2 90 11 2B 033 101 {:02}",
        97 - 2_901_118_033_101u64 % 97
    ));
    for number in &numbers {
        let text =
            format!("Madame, votre numéro de sécurité sociale est le {number}. Cordialement");
        let found = hit(&text, "fr-nir").unwrap_or_else(|| panic!("{text}"));
        assert_eq!(found.confidence, Confidence(85), "{text}");
        assert_eq!(
            found.matches[0].excerpt,
            format!("* ** ** ** *** *** {}", &number[19..])
        );
        assert_eq!(
            found.matches[0].keywords[0].keyword,
            "numéro de sécurité sociale"
        );
        // Printed in its groups it needs no keyword.
        let alone = hit(&format!("Réf. {number}"), "fr-nir").unwrap();
        assert_eq!(alone.confidence, Confidence(65), "{number}");
    }
    // Compact it is bare: a keyword nearby, and then medium.
    assert_eq!(
        hit("Carte Vitale n° 255081416802538", "fr-nir")
            .unwrap()
            .confidence,
        Confidence(65)
    );
    assert_eq!(
        hit("Ma sécu : 2550814168025 38", "fr-nir").unwrap().matches[0].excerpt,
        "************* 38"
    );
    assert!(hit("Commande 255081416802538", "fr-nir").is_none());
}

#[test]
fn nirs_with_a_wrong_key_month_length_or_bounds_are_refused() {
    for text in [
        "NIR 2 55 08 14 168 025 39",              // key
        "NIR 2 55 13 14 168 025 73",              // month 13
        "NIR 2 55 08 00 168 025 38",              // department 00
        "NIR 2 55 08 14 168 000 38",              // order 000
        "NIR 5 55 08 14 168 025 38",              // sex 5
        "NIR 2 55 08 2C 168 025 38",              // no such department
        "NIR 25508141680253",                     // fourteen characters
        "NIR 2550814168025380",                   // sixteen
        "NIR 92550814168025380",                  // inside a longer run
        "NIR FR255081416802538",                  // an identifier's tail
        "NIR 2 55 08 14 168 025 38-1",            // an identifier's head
        "Tél. 01 23 45 67 89, +33 1 23 45 67 89", // French phone numbers
    ] {
        assert!(hit(text, "fr-nir").is_none(), "{text}");
    }
}

#[test]
fn a_keyword_beyond_the_proximity_does_not_raise_confidence() {
    let far = " ".repeat(400);
    let bsn = hit(&format!("BSN{far}123456782"), "nl-bsn");
    assert!(bsn.is_none(), "{bsn:#?}");
    let dni = hit(&format!("DNI{far}12345678Z"), "es-dni");
    assert!(dni.is_none(), "{dni:#?}");
    let nir = hit(&format!("NIR{far}2 55 08 14 168 025 38"), "fr-nir").unwrap();
    assert_eq!(nir.confidence, Confidence(65));
    assert!(nir.matches[0].keywords.is_empty());
}

#[test]
fn rule_files_use_the_built_in_names_and_their_own_keywords() {
    let rules = RuleSet::parse(
        r#"
[detectors.klant_bsn]
kind = "nl_bsn"
keywords = ["klantnummer"]

[[rules]]
name = "ids"
severity = "high"
detectors = ["klant_bsn", "es_dni", "fr_nir"]
min_confidence = "high"
"#,
        Path::new("ids.toml"),
        &Settings::default(),
    )
    .unwrap();
    let text = "Klantnummer 1112 22 333. DNI X1234567L. NIR 2 55 08 14 168 025 38.";
    let hits = rules.evaluate(&body(text));
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let kinds: Vec<String> = hits[0].matches.iter().map(|m| m.detector.clone()).collect();
    assert_eq!(kinds, ["klant_bsn", "es_dni", "fr_nir"]);
    let json = serde_json::to_string(&hits).unwrap();
    for secret in [
        "111222333",
        "1112 22",
        "1234567",
        "2 55 08 14",
        "255081416802538",
    ] {
        assert!(!json.contains(secret), "{secret} in {json}");
    }
    assert!(json.contains(r#""kind":"nl_bsn""#), "{json}");
}

#[test]
fn each_languages_keywords_support_a_bare_number() {
    for (text, rule, keyword) in [
        ("Sofi-nummer: 123456782", "nl-bsn", "Sofi-nummer"),
        ("Persoonsnummer 123456782", "nl-bsn", "Persoonsnummer"),
        ("D.N.I. 12345678Z", "es-dni", "D.N.I."),
        ("NIF: 12345678Z", "es-dni", "NIF"),
        (
            "Carné de identidad 12345678Z",
            "es-dni",
            "Carné de identidad",
        ),
        ("N° sécu 255081416802538", "fr-nir", "N° sécu"),
        ("Numéro INSEE 255081416802538", "fr-nir", "Numéro INSEE"),
    ] {
        let found = hit(text, rule).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(found.matches[0].keywords[0].keyword, keyword, "{text}");
        assert_eq!(found.confidence, Confidence(65), "{text}");
    }
}
