# Test-BpfPacket and Should -BeVerdict through pwsh: results, errors a script can match, the kernel beside the
# interpreter, a pwsh process without privileges giving the same answers, the operator whichever module comes first,
# and samples/demo.Tests.ps1 gating a ruleset change. The module comes from $env:BPFILTER_MODULE (set by build.ps1
# Test), or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $script:canUseKernel = $false
    if ($IsLinux) {
        $line = Get-Content /proc/self/status | Where-Object { $_ -like 'CapEff:*' }
        $caps = [Convert]::ToUInt64(($line -replace 'CapEff:\s*', ''), 16)
        $script:canUseKernel = (($caps -shr 39) -band 1) -eq 1 -and (($caps -shr 12) -band 1) -eq 1
    }
    $script:hasSetpriv = $IsLinux -and $null -ne (Get-Command setpriv -ErrorAction Ignore)
}

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path   # 'dotnet pwsh' finds its tool manifest here
    $script:pester = Join-Path (Get-Module Pester).ModuleBase 'Pester.psd1'
    $script:demoPath = Join-Path $repo 'samples/demo.yaml'
    $script:demo = Import-BpfRuleset -Path $demoPath

    # Runs a script in a new pwsh process (optionally with fewer privileges) and returns its output lines.
    function Invoke-Child([string] $Script, [string[]] $Prefix = @()) {
        Push-Location $repo
        try {
            if ($Prefix.Count -gt 0) { & $Prefix[0] @($Prefix | Select-Object -Skip 1) dotnet pwsh -NoProfile -NonInteractive -Command $Script 2>&1 }
            else { & dotnet pwsh -NoProfile -NonInteractive -Command $Script 2>&1 }
        }
        finally { Pop-Location }
    }

    # The cases the privilege test compares, as one line of text each.
    $script:probe = @'
$r = Import-BpfRuleset '{0}'
@(
    Test-BpfPacket -Ruleset $r -Protocol tcp -DestinationPort 23
    Test-BpfPacket -Ruleset $r -Source 10.200.0.66 -Protocol icmp
    Test-BpfPacket -Ruleset $r -Protocol udp -Destination 10.200.0.53 -DestinationPort 53 -Length 200
    Test-BpfPacket -Ruleset $r -Protocol udp -DestinationPort 53
    Test-BpfPacket -Ruleset $r -Source 2001:db8::1 -Destination 2001:db8::2
    Test-BpfPacket -Ruleset $r -Packet ([byte[]]::new(20))
) | ForEach-Object {{ 'CASE {{0}}|{{1}}|{{2}}|{{3}}|{{4}}|{{5}}' -f $_.Verdict, $_.Rule, $_.Position, ($_.Evaluated -join ','), $_.Length, $_.ReturnCode }}
'@
}

Describe 'Test-BpfPacket' {
    It 'says which rule decided, where it stands, and which rules were tried' {
        $result = Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23
        $result.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Simulation.PacketTestResult'
        $result.Verdict | Should -Be 'Drop'
        $result.Rule | Should -Be 'no-telnet'
        $result.Position | Should -Be 2
        $result.Evaluated | Should -Be @('drop-blocked-host', 'no-telnet')
        $result.DecidedBy | Should -Be 'Rule'
        $result.Chain | Should -Be 'INPUT'
        $result.Hook | Should -Be 'xdp'
        $result.Packet | Should -Be 'tcp 192.0.2.1:0 -> 192.0.2.2:23, 54 bytes'
        $result.Kernel | Should -BeNullOrEmpty
    }

    It 'leaves Rule empty and Position null when the policy decides' {
        $result = Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 443 -Length 1000
        $result.Verdict | Should -Be 'Accept'
        $result.Rule | Should -BeExactly ''
        $result.Position | Should -BeNullOrEmpty
        $result.DecidedBy | Should -Be 'Policy'
        $result.Length | Should -Be 1000
        $result.Evaluated.Count | Should -Be 3
    }

    It 'takes rulesets from the pipeline, one result each' {
        $results = @($demo, $demo) | Test-BpfPacket -Source 10.200.0.66 -Protocol udp
        $results.Count | Should -Be 2
        $results.Rule | Should -Be @('drop-blocked-host', 'drop-blocked-host')
    }

    It 'takes raw bytes, malformed ones included' {
        $frame = [byte[]]::new(30); $frame[12] = 0x08; $frame[14] = 0x45
        (Test-BpfPacket -Ruleset $demo -Packet $frame).DecidedBy | Should -Be 'Malformed'
        (Test-BpfPacket -Ruleset $demo -Bytes ([byte[]]::new(14))).DecidedBy | Should -Be 'NotIp'
    }

    It 'picks a chain by name or by hook, and says when it cannot' {
        $yaml = "bpfilter: 1`nname: two`nchains:`n  - name: EDGE`n    hook: xdp`n    interface: eth0`n    rules: []`n" +
            "  - name: INPUT`n    hook: nf-input`n    policy: drop`n    rules:`n      - name: ssh`n        match: { protocol: tcp, destination-port: 22 }`n        action: accept`n"
        Set-Content -Path "$TestDrive/two.yaml" -Value $yaml
        $two = Import-BpfRuleset "$TestDrive/two.yaml"
        (Test-BpfPacket -Ruleset $two -Chain INPUT -Protocol tcp -DestinationPort 22).Rule | Should -Be 'ssh'
        $viaHook = Test-BpfPacket -Ruleset $two -Hook nf-input -Protocol tcp -DestinationPort 80
        $viaHook.Verdict | Should -Be 'Drop'
        $viaHook.Length | Should -Be 40   # no Ethernet header at a netfilter hook
        $err = { Test-BpfPacket -Ruleset $two -Protocol tcp -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.ChainAmbiguous,*'
        $err = { Test-BpfPacket -Ruleset $two -Chain OUTPUT -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.ChainNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses fields that make no packet with a stable id' -ForEach @(
        @{ Fields = @{ Protocol = 'icmp'; DestinationPort = 80 } }
        @{ Fields = @{ Source = '10.0.0.0/8' } }
        @{ Fields = @{ Protocol = 'tcp'; Length = 20 } }
    ) {
        $err = { Test-BpfPacket -Ruleset $demo @Fields -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.PacketInvalid,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'shows a table with the verdict, the rule and the packet' {
        $text = Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 443 | Out-String -Width 200
        $text | Should -Match 'Verdict'
        $text | Should -Match 'Accept\s+\(policy\)'
        $text | Should -Match 'tcp 192\.0\.2\.1:0 -> 192\.0\.2\.2:443'
    }

    It 'reports the kernel beside the interpreter with -Kernel' -Skip:(-not $canUseKernel) {
        $result = Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23 -Kernel
        $result.Kernel.Verdict | Should -Be 'Drop'
        $result.Kernel.Rule | Should -Be 'no-telnet'
        $result.Agrees | Should -BeTrue
        ($result | Out-String -Width 200) | Should -Match 'agrees'
    }

    It 'gives the same answers in a pwsh process without privileges, and says -Kernel needs them' -Skip:(-not $hasSetpriv) {
        $inProcess = Invoke-Expression ($probe -f $demoPath)
        $script = "Import-Module '$module'; " + ($probe -f $demoPath) +
            "; (Get-Content /proc/self/status | Where-Object { `$_ -like 'CapEff:*' }); " +
            "try { Test-BpfPacket -Ruleset `$r -Protocol tcp -Kernel -ErrorAction Stop } catch { 'ERROR ' + `$_.FullyQualifiedErrorId }"
        $out = Invoke-Child $script -Prefix @('setpriv', '--bounding-set', '-bpf,-net_admin,-perfmon,-sys_admin')
        $cases = @($out | Where-Object { "$_" -like 'CASE *' })
        $cases.Count | Should -Be 6
        $cases | Should -Be $inProcess
        $capEff = [Convert]::ToUInt64((("$($out | Where-Object { "$_" -like 'CapEff:*' })") -replace 'CapEff:\s*', ''), 16)
        ($capEff -shr 39) -band 1 | Should -Be 0 -Because 'the child must run without CAP_BPF'
        ($out | Where-Object { "$_" -like 'ERROR *' }) | Should -BeLike 'ERROR Bpfilter.PrivilegeMissing,*'
    }
}

Describe 'Should -BeVerdict' {
    It 'passes when the verdict (and the rule) are as expected' {
        Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop
        Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23 | Should -BeVerdict drop -ByRule no-telnet
        Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 80 | Should -BeVerdict Accept -ByRule '(policy)'
        Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 80 | Should -Not -BeVerdict Drop
    }

    It 'fails with a message that says what decided the packet' {
        { Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 22 | Should -BeVerdict Drop -Because 'ssh is closed' } |
            Should -Throw -ExpectedMessage "*to be dropped, because ssh is closed, but it was accepted by the policy (rules tried: drop-blocked-host, no-telnet, allow-dns)*"
        { Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop -ByRule drop-blocked-host } |
            Should -Throw -ExpectedMessage "*to be dropped by drop-blocked-host, but it was dropped by rule 2 'no-telnet'*"
        { Test-BpfPacket -Ruleset $demo -Protocol tcp -DestinationPort 23 | Should -Not -BeVerdict Drop } |
            Should -Throw -ExpectedMessage '*not to be dropped*'
    }

    It 'fails on something that is not a Test-BpfPacket result, and on a verdict that is not one' {
        { 'Drop' | Should -BeVerdict Drop } | Should -Throw -ExpectedMessage '*Expected a Test-BpfPacket result*'
        { Test-BpfPacket -Ruleset $demo | Should -BeVerdict Reject } | Should -Throw -ExpectedMessage "*'Reject' is not a verdict*"
    }

    It 'is registered when Pester is <Order> Bpfilter' -ForEach @(
        @{ Order = 'imported before'; Script = "Import-Module '{1}'; Import-Module '{0}'" }
        @{ Order = 'imported after'; Script = "Import-Module '{0}'; Import-Module '{1}'" }
        @{ Order = 'autoloaded after'; Script = "Import-Module '{0}'; `$env:PSModulePath = '{2}' + [IO.Path]::PathSeparator + `$env:PSModulePath" }
    ) {
        $linkRoot = Join-Path $TestDrive 'modules'
        if (-not (Test-Path "$linkRoot/Pester")) {
            New-Item -ItemType Directory -Path $linkRoot -Force | Out-Null
            New-Item -ItemType SymbolicLink -Path "$linkRoot/Pester" -Target (Split-Path $pester) | Out-Null
        }
        $setup = $Script -f $module, $pester, $linkRoot
        $check = "`$r = Import-BpfRuleset '$demoPath'; Test-BpfPacket -Ruleset `$r -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop -ByRule no-telnet; 'PASSED'; " +
            "try { Test-BpfPacket -Ruleset `$r -Protocol tcp -DestinationPort 23 | Should -BeVerdict Accept } catch { 'FAILED ' + `$_.Exception.Message }"
        $out = Invoke-Child "$setup; $check"
        $out | Should -Contain 'PASSED'
        ($out | Where-Object { "$_" -like 'FAILED *' }) | Should -BeLike "FAILED Expected packet*to be accepted, but it was dropped by rule 2 'no-telnet'*"
    }
}

Describe 'The deployment gate in samples/demo.Tests.ps1' {
    BeforeAll {
        # Runs the gate in its own pwsh (Pester does not nest) on one ruleset file; returns "RESULT passed failed".
        function Invoke-Gate([string] $RulesetPath) {
            $gate = Join-Path $repo 'samples/demo.Tests.ps1'
            $script = "Import-Module '$pester'; `$env:BPFILTER_MODULE = '$module'; " +
                "`$c = New-PesterContainer -Path '$gate' -Data @{ RulesetPath = '$RulesetPath' }; " +
                "`$r = Invoke-Pester -Container `$c -PassThru -Output None; 'RESULT {0} {1} {2}' -f `$r.Result, `$r.PassedCount, `$r.FailedCount"
            Invoke-Child $script | Where-Object { "$_" -like 'RESULT *' } | Select-Object -Last 1
        }
    }

    It 'passes on samples/demo.yaml' {
        Invoke-Gate $demoPath | Should -Match '^RESULT Passed \d+ 0$'
    }

    It 'stops a change that drops the telnet rule' {
        (Get-Content $demoPath -Raw) -replace '(?ms)^      - name: no-telnet.*?action: drop\r?\n', '' | Set-Content "$TestDrive/no-telnet-gone.yaml"
        (Import-BpfRuleset "$TestDrive/no-telnet-gone.yaml").Chains[0].Rules.Name | Should -Not -Contain 'no-telnet'
        Invoke-Gate "$TestDrive/no-telnet-gone.yaml" | Should -Match '^RESULT Failed \d+ [1-9]\d*$'
    }
}

Describe 'about_Bpfilter_Testing' {
    It 'is found by Get-Help' {
        $about = Get-Help -Name about_Bpfilter_Testing -ErrorAction Stop
        $about.Category | Should -Be 'HelpFile'
        ($about | Out-String) | Should -Match 'TOPIC\s+about_Bpfilter_Testing'
        ($about | Out-String) | Should -Match 'Should -BeVerdict'
    }
}

Describe 'Test-BpfPacket header fields in iptables spelling' {
    BeforeAll {
        $script:demoRules = Import-BpfRuleset (Join-Path $PSScriptRoot '../../samples/demo.yaml')
    }

    It 'takes -TcpFlags as iptables writes them' {
        (Test-BpfPacket -Ruleset $demoRules -Protocol tcp -DestinationPort 23 -TcpFlags 'SYN,ACK').Rule | Should -Be 'no-telnet'
    }

    It 'takes -IcmpType by name and -IcmpCode' {
        (Test-BpfPacket -Ruleset $demoRules -Protocol icmp -IcmpType destination-unreachable -IcmpCode 3).DecidedBy | Should -Be 'Policy'
    }

    It 'refuses TCP flags on a UDP packet with a stable id' {
        { Test-BpfPacket -Ruleset $demoRules -Protocol udp -TcpFlags SYN -ErrorAction Stop } | Should -Throw -ErrorId 'Bpfilter.PacketInvalid,Bpfilter.Commands.TestBpfPacketCommand'
    }
}
