@{
    RootModule           = 'Bpfilter.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5c0b7f0e-3c39-4d3b-9a55-6f1f0e2b7a41'
    Author               = 'Bpfilter contributors'
    CompanyName          = 'Bpfilter'
    Copyright            = '(c) Bpfilter contributors. MIT License.'
    Description          = 'Turns firewall rulesets (YAML or rule objects) into eBPF programs and deploys them on Linux at XDP, TC, netfilter and cgroup hooks, with atomic updates, per-rule counters in pinned BPF maps, and a simulator to test rulesets without a kernel.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('Bpfilter.Format.ps1xml')
    # The loader comes first: it must be in place before PowerShell reads Bpfilter.dll's cmdlets.
    NestedModules        = @('Bpfilter.Loader.dll', 'Bpfilter.Testing.psm1', 'Bpfilter.Iptables.psm1')
    CmdletsToExport      = @(
        'Import-BpfRuleset'
        'Export-BpfRuleset'
        'New-BpfRule'
        'Get-BpfChain'
        'Publish-BpfProgram'
        'Get-BpfCounter'
        'Unpublish-BpfProgram'
        'Get-BpfProgram'
        'Show-BpfProgram'
        'Test-BpfPacket'
        'Compare-BpfRuleset'
        'New-BpfChain'
        'New-BpfRuleset'
        'New-BpfSet'
        'Add-BpfRule'
        'Remove-BpfRule'
        'Set-BpfChain'
        'Get-BpfSet'
        'Add-BpfSetMember'
        'Remove-BpfSetMember'
        'Get-BpfLog'
        'Invoke-BpfIptables'
    )
    FunctionsToExport    = @('Invoke-BpfIptablesCommandLine', 'Invoke-BpfIp6tablesCommandLine')
    AliasesToExport      = @('bpf-iptables', 'bpf-ip6tables')
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('firewall', 'ebpf', 'xdp', 'linux', 'PSEdition_Core')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = '0.1.0: YAML rulesets and rule objects compiled to eBPF; XDP (native, generic, offload), TCX, netfilter and cgroup hooks; atomic republish with crash recovery; per-rule counters; Show-BpfProgram; Test-BpfPacket with an eBPF interpreter.'
        }
    }
}
