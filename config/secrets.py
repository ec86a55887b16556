"""The catalogue of secret settings: each is set with `pulumi config set --secret` or generated."""

from __future__ import annotations

SECRET_SETTINGS: dict[str, str] = {
    "postgres_password": "Password of Synapse's PostgreSQL user.",
    "synapse_macaroon_secret_key": "Key Synapse signs access tokens with.",
    "synapse_form_secret": "Key Synapse signs forms (consent, SSO) with.",
    "synapse_registration_shared_secret": "Shared secret for admin registration (register_new_matrix_user).",
    "synapse_admin_password": "Password of synapse.admin_username.",
    "synapse_registration_token": "Registration token created on deploy when registration is 'token'.",
    "synapse_redis_password": "Password of Synapse's Redis (synapse.workers).",
    "synapse_replication_secret": "Secret Synapse's main process and workers authenticate replication with (synapse.workers).",
    "mysql_root_password": "MySQL root password.",
    "mysql_password": "Password of MySQL user voicegrow.",
    "redis_password": "Redis password (requirepass).",
    "minio_root_user": "MinIO root user (the server's access key).",
    "minio_root_password": "MinIO root password (the server's secret key).",
    "tts_api_key": "ai-manager API key for TTS (ak_...).",
    "tts_secret_key": "ai-manager signing key for TTS (sk_...).",
    "llm_api_key": "ai-manager API key for the LLM; default: tts_api_key.",
    "llm_secret_key": "ai-manager signing key for the LLM; default: tts_secret_key.",
    "tls_certificate": "PEM certificate chain for every proxied host (tls: files).",
    "tls_private_key": "PEM private key of tls_certificate (tls: files).",
    "backup_rclone_config": "rclone.conf with the offsite remote (backup.offsite).",
    "grafana_admin_password": "Password of Grafana's admin, also the login of Prometheus and Alertmanager behind the proxy.",
    "alert_smtp_password": "SMTP password of monitoring.email.username.",
    "alert_wecom_secret": "Secret of the WeCom app that sends alerts (monitoring.wecom).",
    "alert_dingtalk_url": "DingTalk robot webhook URL with its access_token.",
    "alert_dingtalk_secret": "DingTalk robot signing secret (SEC...), when the robot signs.",
    "alert_webhook_url": "URL that gets Alertmanager's webhook notifications (the 'webhook' receiver).",
    "firewall_ssh_private_key": "Private key (OpenSSH PEM) the firewall's SSH connection uses; unset: the SSH agent.",
}
