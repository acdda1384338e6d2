//! Config document kinds Talos registers, and the first release that knows
//! each one (read from Talos's pkg/machinery/config/types at v1.9.0,
//! v1.10.0, v1.11.0, v1.12.11, v1.13.9 and v1.14.0-rc.1). A node refuses a
//! config with a kind it does not register ("not registered"), so a
//! v1.14-shaped config fails on a v1.13 node.

/// (kind, minor of the first 1.x release that registers it).
const KINDS: &[(&str, u32)] = &[
    ("BGPInstanceConfig", 14),
    ("BlackholeRouteConfig", 13),
    ("BondConfig", 12),
    ("BridgeConfig", 12),
    ("CRIBaseRuntimeSpecConfig", 14),
    ("CRICustomizationConfig", 14),
    ("ContainerConfig", 14),
    ("DHCPv4Config", 12),
    ("DHCPv6Config", 12),
    ("DiscoveryIdentityConfig", 14),
    ("DiscoveryServiceConfig", 14),
    ("DummyLinkConfig", 12),
    ("EnvironmentConfig", 13),
    ("EtcFileConfig", 14),
    ("EthernetConfig", 10),
    ("EventSinkConfig", 9),
    ("ExistingVolumeConfig", 11),
    ("ExtensionServiceConfig", 9),
    ("ExternalVolumeConfig", 13),
    ("FilesystemScrubConfig", 14),
    ("FilesystemTrimConfig", 14),
    ("HCloudVIPConfig", 12),
    ("HTTPProbeConfig", 14),
    ("HostnameConfig", 12),
    ("ImageCacheConfig", 14),
    ("ImageVerificationConfig", 13),
    ("KernelModuleConfig", 14),
    ("KmsgLogConfig", 9),
    ("KubeAPIServerCAConfig", 14),
    ("KubeAPIServerConfig", 14),
    ("KubeAdmissionControlConfig", 14),
    ("KubeAggregatorCAConfig", 14),
    ("KubeAuditPolicyConfig", 14),
    ("KubeAuthenticationConfig", 14),
    ("KubeAuthorizerConfig", 14),
    ("KubeClusterConfig", 14),
    ("KubeControllerManagerConfig", 14),
    ("KubeCoreDNSConfig", 14),
    ("KubeCredentialProviderConfig", 14),
    ("KubeEtcdEncryptionConfig", 14),
    ("KubeExternalManifestConfig", 14),
    ("KubeFlannelCNIConfig", 14),
    ("KubeInlineManifestConfig", 14),
    ("KubeNetworkConfig", 14),
    ("KubeNodeConfig", 14),
    ("KubePrismConfig", 14),
    ("KubeProxyConfig", 14),
    ("KubeSchedulerConfig", 14),
    ("KubeServiceAccountConfig", 14),
    ("KubeSpanConfig", 13),
    ("KubeSpanEndpointsConfig", 9),
    ("KubeStaticPodConfig", 14),
    ("KubeTalosAPIAccessConfig", 14),
    ("KubeletConfig", 14),
    ("LVMLogicalVolumeConfig", 14),
    ("LVMVolumeGroupConfig", 14),
    ("Layer2VIPConfig", 12),
    ("LinkAliasConfig", 12),
    ("LinkConfig", 12),
    ("NetworkDefaultActionConfig", 9),
    ("NetworkRuleConfig", 9),
    ("OOMConfig", 12),
    ("PCIDriverRebindConfig", 10),
    ("RAIDArrayConfig", 14),
    ("RawVolumeConfig", 11),
    ("RegistryAuthConfig", 12),
    ("RegistryMirrorConfig", 12),
    ("RegistryTLSConfig", 12),
    ("ResolverConfig", 12),
    ("RoutingRuleConfig", 13),
    ("SecurityProfileConfig", 14),
    ("SideroLinkConfig", 9),
    ("StaticHostConfig", 12),
    ("SwapVolumeConfig", 11),
    ("SysctlConfig", 14),
    ("SysfsConfig", 14),
    ("TCPProbeConfig", 13),
    ("TimeSyncConfig", 12),
    ("TrustedRootsConfig", 9),
    ("UdevRulesConfig", 14),
    ("UnattendedInstallConfig", 14),
    ("UserVolumeConfig", 10),
    ("VLANConfig", 12),
    ("VRFConfig", 13),
    ("VethConfig", 14),
    ("VolumeConfig", 9),
    ("WatchdogTimerConfig", 9),
    ("WireguardConfig", 12),
    ("ZswapConfig", 11),
];

/// The first Talos 1.x minor that knows `kind` (`None`: no release up to
/// v1.14 does).
pub(crate) fn since_minor(kind: &str) -> Option<u32> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m)
}

/// Whether some Talos release up to v1.14 knows `kind`.
pub(crate) fn known(kind: &str) -> bool {
    since_minor(kind).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_carry_their_release() {
        assert_eq!(since_minor("HostnameConfig"), Some(12));
        assert_eq!(since_minor("KubeSpanConfig"), Some(13));
        assert_eq!(since_minor("UnattendedInstallConfig"), Some(14));
        assert_eq!(since_minor("KubeClusterConfig"), Some(14));
        assert!(known("ExtensionServiceConfig"));
        assert!(!known("MadeUpConfig"));
    }
}
