//! Kolab v3 groupware objects as a Kolab client (Roundcube, Kontact) stores them in IMAP: a
//! MIME message whose `X-Kolab-Type` names the type, whose `Subject` is the object's UID, and
//! whose `kolab.xml` attachment holds the xCal (`application/calendar+xml`) object.

/// An event's properties, as its xCal `<properties>` children (already formatted), e.g.
/// `("summary", "<text>Meeting</text>")`.
pub type Properties<'a> = &'a [(&'a str, &'a str)];

/// The xCal document of an event with this UID and these properties.
pub fn event_xml(uid: &str, properties: Properties<'_>) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?>\r\n\
         <icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\">\r\n  <vcalendar>\r\n    <properties>\r\n\
         \x20     <prodid><text>Roundcube-libcalendaring-1.3 Kolab</text></prodid>\r\n\
         \x20     <version><text>2.0</text></version>\r\n\
         \x20     <x-kolab-version><text>3.1.0</text></x-kolab-version>\r\n    </properties>\r\n\
         \x20   <components>\r\n      <vevent>\r\n        <properties>\r\n",
    );
    xml.push_str(&format!("          <uid><text>{uid}</text></uid>\r\n"));
    for (name, value) in properties {
        xml.push_str(&format!("          <{name}>{value}</{name}>\r\n"));
    }
    xml.push_str("        </properties>\r\n      </vevent>\r\n    </components>\r\n  </vcalendar>\r\n</icalendar>\r\n");
    xml
}

/// The MIME message a Kolab client appends for an object of `kind` (`event`, `task`...).
pub fn message(kind: &str, uid: &str, from: &str, date: &str, xml: &str) -> Vec<u8> {
    format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_kolab\"\r\nFrom: {from}\r\nTo: {from}\r\n\
         Date: {date}\r\nX-Kolab-Type: application/x-vnd.kolab.{kind}\r\nX-Kolab-Mime-Version: 3.0\r\n\
         Subject: {uid}\r\nUser-Agent: Roundcube Webmail\r\n\r\n--=_kolab\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\nThis is a Kolab Groupware object.\r\n\r\n--=_kolab\r\n\
         Content-Type: application/calendar+xml; charset=UTF-8; name=kolab.xml\r\n\
         Content-Disposition: attachment; filename=kolab.xml; size={}\r\n\r\n{xml}\r\n--=_kolab--\r\n",
        xml.len()
    )
    .into_bytes()
}

/// An xCal date-time value in a time zone as Kolab names it (`/kolab.org/<zone>`), for
/// `dtstart`, `dtend`, `exdate` or `recurrence-id`: `zoned("Europe/Berlin", "2026-12-01T10:00:00")`.
pub fn zoned(zone: &str, local: &str) -> String {
    format!(
        "<parameters><tzid><text>/kolab.org/{zone}</text></tzid></parameters><date-time>{local}</date-time>"
    )
}

/// An xCal `rrule` value from its parts in order: `recur(&[("freq", "WEEKLY"), ("byday", "TU")])`.
pub fn recur(parts: &[(&str, &str)]) -> String {
    let parts: String = parts
        .iter()
        .map(|(name, value)| format!("<{name}>{value}</{name}>"))
        .collect();
    format!("<recur>{parts}</recur>")
}

/// The xCal document of a recurring event with exceptions, as Kolab v3 stores them: the
/// exceptions are further `<vevent>`s with the same UID (each with its `recurrence-id`).
pub fn event_with_exceptions_xml(
    uid: &str,
    properties: Properties<'_>,
    exceptions: &[Properties<'_>],
) -> String {
    const VEVENT_END: &str = "</vevent>\r\n";
    let mut xml = event_xml(uid, properties);
    let master_end = xml.rfind(VEVENT_END).expect("event_xml writes a vevent") + VEVENT_END.len();
    let mut added = String::new();
    for exception in exceptions {
        added.push_str("      <vevent>\r\n        <properties>\r\n");
        added.push_str(&format!("          <uid><text>{uid}</text></uid>\r\n"));
        for (name, value) in *exception {
            added.push_str(&format!("          <{name}>{value}</{name}>\r\n"));
        }
        added.push_str("        </properties>\r\n      </vevent>\r\n");
    }
    xml.insert_str(master_end, &added);
    xml
}

/// Replaces the message with UID `old` in the selected `folder` by `new`, as a Kolab client
/// updates an object: append the new version, then flag the old one deleted and expunge it.
pub fn replace(client: &mut bonnie_imap::Connection, folder: &str, old: u32, new: &[u8]) {
    client.append(folder, &Default::default(), new).unwrap();
    client
        .run(&format!("UID STORE {old} +FLAGS (\\Deleted)"), &[])
        .unwrap();
    client.run(&format!("UID EXPUNGE {old}"), &[]).unwrap();
}
