//! The e-discovery item documents of archived messages (being written).

/// The text of an item that its document does not keep (the storage indexes it and stores it
/// nowhere): what a search's body and bare-word terms look in, read again from the payload when
/// a term must be decided by the searching side rather than by the storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemText {
    /// The body text (every text part).
    pub body: String,
    /// The attachments' text.
    pub attachments: String,
}
