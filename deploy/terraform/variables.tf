variable "name_prefix" {
  description = "Prefix of the role names: the roles are <prefix>-investigate and <prefix>-contain. Use the same prefix in the member-account module, because the roles here may assume only member roles of that name."
  type        = string
  default     = "keycheck"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,50}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 50 characters of letters, digits and +=,.@_- so that <prefix>-investigate is a valid role name."
  }
}

variable "create_containment_role" {
  description = "Whether to create the containment role, which may deactivate and rotate keys, revoke sessions and attach the AWS quarantine policy. Set to false to run keycheck read only."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider, such as arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE. When set, the roles trust the Kubernetes service account below through IRSA (sts:AssumeRoleWithWebIdentity). Leave null when keycheck does not run on EKS."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN such as arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE."
  }
}

variable "kubernetes_namespace" {
  description = "Namespace of the Kubernetes service account keycheck runs as. Used only with oidc_provider_arn."
  type        = string
  default     = "keycheck"
}

variable "kubernetes_service_account" {
  description = "Name of the Kubernetes service account keycheck runs as. Used only with oidc_provider_arn."
  type        = string
  default     = "keycheck"
}

variable "trusted_principal_arns" {
  description = "ARNs of IAM roles or users that run keycheck outside EKS, such as an ECS task role or an EC2 instance role, and may assume the roles with sts:AssumeRole. A principal in another AWS account requires external_id."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.trusted_principal_arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:", arn))])
    error_message = "Each trusted_principal_arns entry must be an IAM principal ARN such as arn:aws:iam::111122223333:role/keycheck-runtime."
  }
}

variable "external_id" {
  description = "External ID that trusted_principal_arns must pass to assume the roles (the sts:ExternalId condition). Required when a trusted principal is in another account, and applied to every trusted principal when set. It is not a secret, but make it unique to this deployment: it guards against the confused-deputy problem when the principal's account also acts for other teams."
  type        = string
  default     = null

  validation {
    condition     = var.external_id == null || can(regex("^[A-Za-z0-9+=,.@:/_-]{2,1224}$", var.external_id))
    error_message = "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-."
  }
}

variable "max_session_duration" {
  description = "Maximum session length of the roles, in seconds (3600 to 43200). An investigation takes minutes, so the default of one hour leaves room."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy to set as the permissions boundary of both roles, if your organisation requires one. Leave null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every role."
  type        = map(string)
  default     = {}
}
