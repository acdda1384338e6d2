//! The small subset of Go template syntax talhelper's `filenameTmpl` uses:
//! `{{ .ClusterName }}`, `{{ .Hostname }}`, `{{ .IPAddress }}` and
//! `{{ .Role }}`, with free spacing and `{{-`/`-}}` trim markers. Anything
//! else (pipelines, functions, conditionals) is rejected with a clear reason
//! rather than guessed at, because a wrong file name means applying the
//! wrong config to a node.

/// talhelper's default file name template.
pub(crate) const DEFAULT_FILENAME_TMPL: &str = "{{ .ClusterName }}-{{ .Hostname }}.yaml";

/// The values a filename template can refer to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemplateVars<'a> {
    pub cluster_name: &'a str,
    pub hostname: &'a str,
    /// The raw `ipAddress` string, commas and all, as talhelper passes it.
    pub ip_address: &'a str,
    /// `controlplane` or `worker`.
    pub role: &'a str,
}

/// Renders `template` with `vars`; the error is a reason without context.
pub(crate) fn render(template: &str, vars: &TemplateVars<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            return Err("`{{` without a closing `}}`".into());
        };
        let mut action = &after_open[..close];
        if let Some(a) = action.strip_prefix('-')
            && a.starts_with(char::is_whitespace)
        {
            text = text.trim_end();
            action = a;
        }
        let mut trim_right = false;
        if let Some(a) = action.strip_suffix('-')
            && a.ends_with(char::is_whitespace)
        {
            trim_right = true;
            action = a;
        }
        out.push_str(text);
        let value = match action.trim() {
            ".ClusterName" => vars.cluster_name,
            ".Hostname" => vars.hostname,
            ".IPAddress" => vars.ip_address,
            ".Role" => vars.role,
            other => {
                return Err(format!(
                    "unsupported action `{{{{{other}}}}}`; talstrap understands {{{{ .ClusterName }}}}, \
                     {{{{ .Hostname }}}}, {{{{ .IPAddress }}}} and {{{{ .Role }}}}"
                ));
            }
        };
        out.push_str(value);
        rest = &after_open[close + 2..];
        if trim_right {
            rest = rest.trim_start();
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const VARS: TemplateVars<'static> = TemplateVars {
        cluster_name: "home",
        hostname: "k8s-0.example.com",
        ip_address: "10.0.0.11, 10.0.0.12",
        role: "controlplane",
    };

    #[test]
    fn default_template() {
        assert_eq!(
            render(DEFAULT_FILENAME_TMPL, &VARS).unwrap(),
            "home-k8s-0.example.com.yaml"
        );
    }

    #[test]
    fn all_fields_and_spacing() {
        assert_eq!(
            render(
                "{{.Role}}/{{   .IPAddress}}-{{ .ClusterName   }}.yaml",
                &VARS
            )
            .unwrap(),
            "controlplane/10.0.0.11, 10.0.0.12-home.yaml"
        );
    }

    #[test]
    fn trim_markers() {
        assert_eq!(
            render("a  {{- .Role -}}  .yaml", &VARS).unwrap(),
            "acontrolplane.yaml"
        );
        assert_eq!(render("plain.yaml", &VARS).unwrap(), "plain.yaml");
    }

    #[test]
    fn unsupported_and_unclosed() {
        let e = render("{{ .Hostname | lower }}.yaml", &VARS).unwrap_err();
        assert!(
            e.contains("unsupported action `{{.Hostname | lower}}`"),
            "{e}"
        );
        let e = render("{{ .Nodename }}.yaml", &VARS).unwrap_err();
        assert!(e.contains(".Nodename"), "{e}");
        let e = render("{{ .Hostname .yaml", &VARS).unwrap_err();
        assert!(e.contains("closing"), "{e}");
    }
}
