//! 印刷厂's operations: print shops and their age keys. Exports sealed to
//! one take `print_shop_id` on the card export and the background export.

use super::Io;

/// (method, path, operation id, summary, permission or `signed`).
pub(super) const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("get", "/api/v1/print-shops", "list_print_shops", "印刷厂: the print shops an export with passwords can be sealed to, with their age public keys", "cards.export_secrets"),
    ("post", "/api/v1/print-shops", "create_print_shop", "Register a print shop with the age X25519 public key (age1…) its age-keygen printed (audited)", "cards.export_secrets"),
    ("delete", "/api/v1/print-shops/{print_shop_id}", "delete_print_shop", "Remove a print shop (audited); files sealed to it stay sealed", "cards.export_secrets"),
];

/// The request and answers of an operation, or `io` back when it is not one of these.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::print_shops as p;
    Ok(match operation_id {
        "list_print_shops" => io.answers_many::<p::PrintShopDto>("The print shops"),
        "create_print_shop" => io
            .json::<p::PrintShopRequest>()
            .answers::<p::PrintShopDto>(201, "The new print shop"),
        "delete_print_shop" => io.empty(204, "Removed"),
        _ => return Err(io),
    })
}
