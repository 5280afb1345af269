# The user's journey through pwsh: import, publish into a namespace, real traffic, counters read from another
# process, atomic republish, -WhatIf, errors a script can catch, unpublish. Everything runs in a sandbox of
# two network namespaces that this file creates and removes.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path   # 'dotnet pwsh' finds its tool manifest here
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.202.0
    $script:tx = $sandbox.Tx; $script:rx = $sandbox.Rx; $script:txIf = $sandbox.TxIf; $script:rxIf = $sandbox.RxIf
    $script:name = "bpft-$($sandbox.Id)"
    function Send-Udp([int] $Port, [int] $Count) { Send-TestUdp $sandbox -Port $Port -Count $Count }

    function Write-Ruleset([string] $Path, [int] $DropPort) {
        @"
bpfilter: 1
name: $name
chains:
  - name: INPUT
    hook: xdp
    interface: $rxIf
    policy: accept
    rules:
      - name: drop-udp-$DropPort
        match: { protocol: udp, destination-port: $DropPort }
        action: drop
"@ | Set-Content $Path
    }
    Write-Ruleset "$TestDrive/v1.yaml" 9999
    Write-Ruleset "$TestDrive/v2.yaml" 7777
}

AfterAll {
    if (Test-Path "/sys/fs/bpf/bpfilter/$name") { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    if (Test-Path '/sys/fs/bpf/bpfilter/quick') { Unpublish-BpfProgram -Name quick -ErrorAction Continue }
    Remove-TestSandbox $sandbox
}

Describe 'Publishing a YAML ruleset' {
    It 'publishes into a named network namespace and says what it deployed' {
        $deployed = Import-BpfRuleset "$TestDrive/v1.yaml" | Publish-BpfProgram -NetworkNamespace $rx
        $deployed.Name | Should -Be $name
        $deployed.Generation | Should -Be 1
        $deployed.Chains[0].Attached | Should -BeTrue
        $deployed.Chains[0].NetworkNamespace | Should -Be $rx
        "/sys/fs/bpf/bpfilter/$name/manifest" | Should -Exist
    }

    It 'lists the deployed chain like iptables -L' {
        $chain = Get-BpfChain -Name $name
        $chain.Chain | Should -Be 'INPUT'
        $chain.Interface | Should -Be $rxIf
        $chain.RuleCount | Should -Be 1
        (Get-BpfChain | Where-Object Deployment -EQ $name) | Should -Not -BeNullOrEmpty
    }

    It 'drops and counts real packets, and another pwsh process reads the counters' {
        Send-Udp -Port 9999 -Count 5
        Send-Udp -Port 8888 -Count 3
        Push-Location $repo
        try {
            $json = & dotnet pwsh -NoProfile -NonInteractive -Command "Import-Module '$module'; Get-BpfCounter -Name $name | ConvertTo-Json"
            $program = & dotnet pwsh -NoProfile -NonInteractive -Command "Import-Module '$module'; Get-BpfProgram -Name $name | ConvertTo-Json" | ConvertFrom-Json
        }
        finally { Pop-Location }
        $program.ProgramId | Should -Be (Get-BpfChain -Name $name).ProgramId
        $program.Instructions | Should -BeGreaterThan 40
        $program.State | Should -Be 0   # Attached
        $rows = $json | ConvertFrom-Json
        $rule = $rows | Where-Object Rule -EQ 'drop-udp-9999'
        $rule.Packets | Should -Be 5
        $rule.Bytes | Should -Be (5 * (14 + 20 + 8 + 8))   # Ethernet + IPv4 + UDP + "payload`n"
        ($rows | Where-Object Rule -EQ '(policy)').Packets | Should -BeGreaterOrEqual 3
    }

    It 'replaces a deployment atomically on the same link and starts the new rules counting' {
        $before = Get-BpfChain -Name $name
        $after = Import-BpfRuleset "$TestDrive/v2.yaml" | Publish-BpfProgram -NetworkNamespace $rx
        $after.Generation | Should -Be 2
        $after.Chains[0].LinkIds | Should -Be $before.LinkIds
        $after.Chains[0].ProgramId | Should -Not -Be $before.ProgramId
        Send-Udp -Port 7777 -Count 4
        (Get-BpfCounter -Name $name | Where-Object Rule -EQ 'drop-udp-7777').Packets | Should -Be 4
    }

    It 'changes nothing with -WhatIf' {
        Import-BpfRuleset "$TestDrive/v1.yaml" | Publish-BpfProgram -NetworkNamespace $rx -WhatIf
        (Get-BpfChain -Name $name).Rules.Name | Should -Be 'drop-udp-7777'
        Unpublish-BpfProgram -Name $name -WhatIf
        "/sys/fs/bpf/bpfilter/$name" | Should -Exist
    }

    It 'publishes piped rule objects as a deployment of their own' {
        $quick = New-BpfRule -Name no-telnet -Protocol tcp -DestinationPort 23 -Action Drop |
            Publish-BpfProgram -Name quick -Interface $txIf -NetworkNamespace $tx -Hook Xdp -Policy Accept
        $quick.Chains[0].Chain | Should -Be 'INPUT'
        (Get-BpfCounter -Name quick).Rule | Should -Contain 'no-telnet'
        Unpublish-BpfProgram -Name quick
        '/sys/fs/bpf/bpfilter/quick' | Should -Not -Exist
    }

    It 'unpublishes: pins gone and no XDP program left on the interface' {
        Unpublish-BpfProgram -Name $name
        "/sys/fs/bpf/bpfilter/$name" | Should -Not -Exist
        Get-BpfChain | Where-Object Deployment -EQ $name | Should -BeNullOrEmpty
        & ip -n $rx link show $rxIf | Out-String | Should -Not -Match 'xdp'
    }
}

Describe 'Errors a script can catch' {
    It 'names file, line and column of a bad YAML line' {
        "bpfilter: 1`nname: bad`nchains:`n  - name: INPUT`n    hook: xdp`n    interface: lo`n    rules:`n      - match: { destnation-port: 23 }`n        action: drop`n" |
            Set-Content "$TestDrive/bad.yaml"
        $err = { Import-BpfRuleset "$TestDrive/bad.yaml" -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.RulesetSyntax,*'
        $err.Exception.Message | Should -BeLike "*bad.yaml:8:18: 'destnation-port' is not a match key*"
    }

    It 'reports an unknown deployment as not found' {
        $err = { Get-BpfCounter -Name bpft-nothing-here -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.DeploymentNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'reports an interface that does not exist, and deploys nothing' {
        $err = { New-BpfRule -Protocol udp -DestinationPort 9 -Action Drop |
                Publish-BpfProgram -Name $name -Interface bpftnope0 -NetworkNamespace $rx -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.InterfaceNotFound,*'
        "/sys/fs/bpf/bpfilter/$name" | Should -Not -Exist
    }

    It 'says which capabilities are missing, while import still works without them' {
        $script = "Import-Module '$module'; `$null = Import-BpfRuleset '$TestDrive/v1.yaml'; 'imported'; " +
            "try { Get-BpfCounter -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }"
        Push-Location $repo
        try { $out = & setpriv --bounding-set '-bpf,-net_admin,-perfmon,-sys_admin' dotnet pwsh -NoProfile -NonInteractive -Command $script }
        finally { Pop-Location }
        $out[0] | Should -Be 'imported'
        $out[1] | Should -BeLike 'Bpfilter.PrivilegeMissing,*'
        $out[2] | Should -BeLike '*needs CAP_BPF*'
    }
}
