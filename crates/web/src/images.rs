//! Uploaded pictures (goods, 礼品卡设置, the pickup page's logo): read from
//! a multipart form, their type sniffed from the bytes, and served back.

use crate::error::{ApiError, ApiResult};
use crate::extract::Multipart;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kaquan_core::goods::{sniff_image_type, GOODS_IMAGE_BYTES_MAX};

/// Reads the `file` field (and the console's `csrf`) of an image upload.
pub async fn read_image_upload(mut multipart: Multipart) -> ApiResult<(Vec<u8>, String)> {
    let (mut bytes, mut csrf) = (Vec::new(), String::new());
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiError::invalid("上传的表单无法解析（文件过大？）"))?
    {
        match field.name() {
            Some("file") => {
                bytes = field
                    .bytes()
                    .await
                    .map_err(|_| ApiError::invalid("图片上传不完整"))?
                    .to_vec()
            }
            Some("csrf") => {
                csrf = field
                    .text()
                    .await
                    .map_err(|_| ApiError::invalid("表单字段无法读取"))?
            }
            other => return Err(crate::extract::unknown_field(other.unwrap_or(""))),
        }
    }
    Ok((bytes, csrf))
}

/// Checks an uploaded image: not empty, within the size limit, and a type
/// recognised from its bytes. Returns that type.
pub fn checked_image(bytes: &[u8]) -> ApiResult<&'static str> {
    if bytes.is_empty() {
        return Err(ApiError::invalid("请选择图片"));
    }
    if bytes.len() > GOODS_IMAGE_BYTES_MAX {
        return Err(ApiError::invalid(format!(
            "图片最大 {} MB",
            GOODS_IMAGE_BYTES_MAX / 1024 / 1024
        )));
    }
    sniff_image_type(bytes).ok_or_else(|| ApiError::invalid("只支持 PNG、JPEG、WebP、GIF 图片"))
}

/// Serves stored image bytes with the type they were recognised as.
pub fn image_response(content_type: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CACHE_CONTROL, "public, max-age=86400".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response()
}
