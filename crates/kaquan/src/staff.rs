//! `kaquan user`: staff accounts, roles and password resets.

use crate::cli_audit;
use crate::print_json;
use crate::UserCommand;
use anyhow::{anyhow, bail};
use kaquan_core::auth::{
    check_staff_password, check_username, hash_staff_password, login_name, login_name_key,
    LOGIN_FAILURES_MERCHANT_ID,
};
use kaquan_core::staff::NewStaff;
use kaquan_core::store::Store;
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

pub(crate) fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_to_string(&mut line)?;
        return Ok(line.lines().next().unwrap_or("").to_owned());
    }
    let first = rpassword::prompt_password("密码: ")?;
    let second = rpassword::prompt_password("再输入一次: ")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

pub(crate) async fn user_command(
    store: &dyn Store,
    merchant_id: i64,
    command: UserCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create {
            username,
            role,
            name,
            phone,
            password_stdin,
            json,
        } => {
            check_username(&username).map_err(|e| anyhow!(e))?;
            let roles = store.list_roles(merchant_id).await?;
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            let role = roles
                .iter()
                .find(|r| r.name == role)
                .ok_or_else(|| anyhow!("unknown role {role:?}; roles: {}", names.join(", ")))?;
            let password = read_password(password_stdin)?;
            check_staff_password(&password).map_err(|e| anyhow!(e))?;
            let username = login_name(merchant_id, &username);
            let staff = NewStaff {
                merchant_id,
                username: username.clone(),
                name: name.unwrap_or_else(|| username.clone()),
                phone,
                role_id: role.id,
                password_hash: hash_staff_password(&password),
                must_change_password: false,
            };
            let staff = store
                .create_staff(&staff, kaquan_web::now())
                .await
                .map_err(|e| match e {
                    kaquan_core::StoreError::Conflict(_) => {
                        anyhow!("username {username:?} is taken")
                    }
                    other => other.into(),
                })?;
            store
                .append_audit(&cli_audit(
                    merchant_id,
                    "create_staff",
                    staff.username.clone(),
                    format!("role={}", role.name),
                ))
                .await?;
            if json {
                print_json(
                    json!({ "staff_id": staff.id, "username": staff.username, "role": role.name }),
                );
            } else {
                println!("已创建管理员 {}（{}）", staff.username, role.label);
            }
        }
        UserCommand::ResetPassword {
            username,
            password_stdin,
            json,
        } => {
            let staff = store
                .find_staff_by_username(username.trim())
                .await?
                .ok_or_else(|| anyhow!("no staff account signs in as {username:?}"))?;
            let password = read_password(password_stdin)?;
            check_staff_password(&password).map_err(|e| anyhow!(e))?;
            let update = kaquan_core::staff::StaffUpdate {
                password_hash: Some(hash_staff_password(&password)),
                ..Default::default()
            };
            store
                .update_staff(staff.merchant_id, staff.id, &update)
                .await?;
            store
                .clear_failures(LOGIN_FAILURES_MERCHANT_ID, &login_name_key(&staff.username))
                .await?;
            store.record_login(staff.id, true, None).await?;
            store
                .append_audit(&cli_audit(
                    staff.merchant_id,
                    "reset_password",
                    staff.username.clone(),
                    String::new(),
                ))
                .await?;
            if json {
                print_json(json!({ "staff_id": staff.id, "username": staff.username }));
            } else {
                println!("已重设 {} 的密码，并解除登录锁定", staff.username);
            }
        }
        UserCommand::List { json } => {
            let staff = store.list_staff(merchant_id).await?;
            let roles = store.list_roles(merchant_id).await?;
            let role_name = |id| {
                roles
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            };
            if json {
                print_json(
                    json!({ "staff": staff.iter().map(|s| json!({"staff_id": s.id, "username": s.username, "name": s.name, "role": role_name(s.role_id), "disabled": s.disabled})).collect::<Vec<_>>() }),
                );
            } else {
                for s in staff {
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.id,
                        s.username,
                        s.name,
                        role_name(s.role_id)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
