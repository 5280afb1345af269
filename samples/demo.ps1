<#
.SYNOPSIS
    The Bpfilter demo: publishes samples/demo.yaml as an XDP firewall in a sandbox, sends traffic that hits every
    rule and the policy, shows the deployed chain and its counters, and removes everything again.
.DESCRIPTION
    The sandbox is two network namespaces, bpfd-tx and bpfd-rx, joined by the veth pair bpfd0 (10.200.0.1 and
    10.200.0.66, in bpfd-tx) and bpfd1 (10.200.0.2, in bpfd-rx). Nothing outside them is touched. The cleanup runs
    in a finally block, so it also runs on Ctrl+C or an error. Needs root.
#>
param([Parameter(Mandatory)] [string] $ModulePath)

$ErrorActionPreference = 'Stop'
$samples = $PSScriptRoot

function ip { & /usr/bin/env ip @args; if ($LASTEXITCODE -ne 0) { throw "ip $args failed" } }

function Remove-Sandbox {
    foreach ($ns in 'bpfd-tx', 'bpfd-rx') {
        if (Test-Path "/run/netns/$ns") { & /usr/bin/env ip netns delete $ns }
    }
}

Import-Module $ModulePath
try {
    Remove-Sandbox   # a demo killed with SIGKILL earlier may have left its namespaces
    if (Get-BpfChain -Name demo -ErrorAction Ignore) { Unpublish-BpfProgram -Name demo }
    ip netns add bpfd-tx
    ip netns add bpfd-rx
    ip link add bpfd0 netns bpfd-tx type veth peer name bpfd1 netns bpfd-rx
    ip -n bpfd-tx addr add 10.200.0.1/24 dev bpfd0
    ip -n bpfd-tx addr add 10.200.0.66/24 dev bpfd0
    ip -n bpfd-rx addr add 10.200.0.2/24 dev bpfd1
    ip -n bpfd-tx link set bpfd0 up
    ip -n bpfd-rx link set bpfd1 up
    Write-Host "Sandbox ready: bpfd-tx (bpfd0: 10.200.0.1, 10.200.0.66) <-> bpfd-rx (bpfd1: 10.200.0.2)`n"

    $ruleset = Import-BpfRuleset (Join-Path $samples 'demo.yaml')
    Write-Host '> $ruleset | Get-BpfChain'
    $ruleset | Get-BpfChain | Format-Table | Out-Host
    Write-Host '> $ruleset | Publish-BpfProgram -NetworkNamespace bpfd-rx'
    $ruleset | Publish-BpfProgram -NetworkNamespace bpfd-rx | Format-Table | Out-Host

    Write-Host '> traffic from bpfd-tx'
    Push-Location (Split-Path $samples)   # 'dotnet pwsh' finds the tool manifest from the repository root
    try { & ip netns exec bpfd-tx dotnet pwsh -NoProfile -File (Join-Path $samples 'demo-traffic.ps1') | Out-Host }
    finally { Pop-Location }

    Write-Host "`n> Get-BpfChain -Name demo"
    Get-BpfChain -Name demo | Format-Table | Out-Host
    Write-Host '> Get-BpfCounter -Name demo'
    Get-BpfCounter -Name demo | Format-Table | Out-Host
}
finally {
    if (Get-BpfChain -Name demo -ErrorAction Ignore) {
        Write-Host '> Unpublish-BpfProgram -Name demo'
        Unpublish-BpfProgram -Name demo
    }
    Remove-Sandbox
    Write-Host 'Sandbox removed.'
}
