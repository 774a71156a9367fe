output "investigation_role_arn" {
  description = "ARN of the investigation role in this account."
  value       = aws_iam_role.investigate.arn
}

output "containment_role_arn" {
  description = "ARN of the containment role in this account, or null when central_containment_role_arn is null."
  value       = local.create_containment_role ? aws_iam_role.contain[0].arn : null
}

output "keycheck_toml" {
  description = "The keycheck.toml table that lets keycheck investigate this account."
  value       = <<-EOT
    [aws.accounts."${data.aws_caller_identity.current.account_id}"]
    role_arn = "${aws_iam_role.investigate.arn}"
    external_id = "${var.external_id}"
  EOT
}
