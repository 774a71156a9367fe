output "investigation_role_arn" {
  description = "ARN of the investigation role. Pass it to the member-account module as central_investigation_role_arn, and annotate keycheck's Kubernetes service account with it (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.investigate.arn
}

output "containment_role_arn" {
  description = "ARN of the containment role, or null when create_containment_role is false. Pass it to the member-account module as central_containment_role_arn."
  value       = var.create_containment_role ? aws_iam_role.contain[0].arn : null
}
