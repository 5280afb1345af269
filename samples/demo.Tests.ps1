# A deployment gate for samples/demo.yaml: what the ruleset must do, as Pester tests. A pipeline runs these before
# it publishes a change to the ruleset, and publishes only when they all pass:
#
#     $gate = Invoke-Pester -Container (New-PesterContainer -Path ./samples/demo.Tests.ps1) -PassThru -Output Detailed
#     if ($gate.Result -eq 'Passed') { Import-BpfRuleset ./samples/demo.yaml | Publish-BpfProgram -NetworkNamespace bpfd-rx }
#
# Every test runs the compiled program in Bpfilter's eBPF interpreter, so the gate needs no root and no kernel; the
# last block also asks the kernel (BPF_PROG_TEST_RUN) and is skipped without CAP_BPF. To test another copy of the
# ruleset (the proposed change), pass its path:
#
#     Invoke-Pester -Container (New-PesterContainer -Path ./samples/demo.Tests.ps1 -Data @{ RulesetPath = './new.yaml' })
#
# about_Bpfilter_Testing explains the pieces.

param(
    [string] $RulesetPath = (Join-Path $PSScriptRoot 'demo.yaml')
)

BeforeDiscovery {
    # The kernel block needs CAP_BPF and CAP_NET_ADMIN (bits 39 and 12 of CapEff).
    $script:canUseKernel = $false
    if ($IsLinux) {
        $line = Get-Content /proc/self/status | Where-Object { $_ -like 'CapEff:*' }
        $caps = [Convert]::ToUInt64(($line -replace 'CapEff:\s*', ''), 16)
        $script:canUseKernel = (($caps -shr 39) -band 1) -eq 1 -and (($caps -shr 12) -band 1) -eq 1
    }
}

BeforeAll {
    # The installed module, or the one 'dotnet pwsh ./build.ps1 Build' assembles in this repository.
    if (-not (Get-Module Bpfilter)) {
        $built = Join-Path $PSScriptRoot '../out/Bpfilter/Bpfilter.psd1'
        if ($env:BPFILTER_MODULE) { Import-Module $env:BPFILTER_MODULE }
        elseif (Get-Module Bpfilter -ListAvailable) { Import-Module Bpfilter }
        else { Import-Module $built }
    }
    $script:ruleset = Import-BpfRuleset -Path $RulesetPath -ErrorAction Stop
}

Describe 'The demo firewall' {
    Context 'the blocked host' {
        It 'drops <Protocol> from 10.200.0.66' -ForEach @(
            @{ Protocol = 'tcp' }, @{ Protocol = 'udp' }, @{ Protocol = 'icmp' }
        ) {
            Test-BpfPacket -Ruleset $ruleset -Source 10.200.0.66 -Destination 10.200.0.10 -Protocol $Protocol |
                Should -BeVerdict Drop -ByRule drop-blocked-host
        }

        It 'drops the host even when it asks the DNS server' {
            Test-BpfPacket -Ruleset $ruleset -Source 10.200.0.66 -Destination 10.200.0.53 -Protocol udp -DestinationPort 53 |
                Should -BeVerdict Drop -ByRule drop-blocked-host
        }
    }

    Context 'telnet' {
        It 'blocks telnet from outside' {
            Test-BpfPacket -Ruleset $ruleset -Source 198.51.100.7 -Destination 10.200.0.10 -Protocol tcp -SourcePort 40000 -DestinationPort 23 |
                Should -BeVerdict Drop -ByRule no-telnet
        }

        It 'blocks telnet in a frame of <Length> bytes' -ForEach @(@{ Length = 54 }, @{ Length = 1514 }) {
            Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 -Length $Length | Should -BeVerdict Drop
        }

        It 'leaves UDP port 23 alone' {
            Test-BpfPacket -Ruleset $ruleset -Protocol udp -DestinationPort 23 | Should -BeVerdict Accept -ByRule '(policy)'
        }
    }

    Context 'DNS' {
        It 'accepts DNS to the servers in 10.200.0.0/24' {
            $result = Test-BpfPacket -Ruleset $ruleset -Source 198.51.100.7 -Destination 10.200.0.53 -Protocol udp -SourcePort 5353 -DestinationPort 53
            $result | Should -BeVerdict Accept -ByRule allow-dns
            $result.Evaluated | Should -Be @('drop-blocked-host', 'no-telnet', 'allow-dns')
        }
    }

    Context 'everything else' {
        It 'lets the web through on port <Port>, by the policy' -ForEach @(@{ Port = 80 }, @{ Port = 443 }) {
            Test-BpfPacket -Ruleset $ruleset -Protocol tcp -Destination 10.200.0.10 -DestinationPort $Port |
                Should -BeVerdict Accept -ByRule '(policy)'
        }

        It 'judges IPv6 by the rules that name no family, and passes ARP without judging it' {
            Test-BpfPacket -Ruleset $ruleset -Source 2001:db8::7 -Destination 2001:db8::10 -Protocol tcp -DestinationPort 23 |
                Should -BeVerdict Drop -ByRule no-telnet
            Test-BpfPacket -Ruleset $ruleset -Source 2001:db8::7 -Destination 2001:db8::10 -Protocol udp -DestinationPort 53 |
                Should -BeVerdict Accept -ByRule '(policy)'
            Test-BpfPacket -Ruleset $ruleset -EtherType 0x0806 | Should -BeVerdict Accept -ByRule '(not ip)'
        }

        It 'drops a cut-short IPv4 header before any rule sees it' {
            $frame = [byte[]]::new(30)
            $frame[12] = 0x08; $frame[14] = 0x45   # EtherType IPv4, version 4, 20-byte header: only 16 bytes follow
            Test-BpfPacket -Ruleset $ruleset -Packet $frame | Should -BeVerdict Drop -ByRule '(malformed)'
        }
    }

    Context 'in the kernel' -Skip:(-not $canUseKernel) {
        It 'the kernel decides <Name> as the interpreter does' -ForEach @(
            @{ Name = 'telnet'; Fields = @{ Protocol = 'tcp'; DestinationPort = 23 }; Verdict = 'Drop' }
            @{ Name = 'DNS'; Fields = @{ Protocol = 'udp'; Destination = '10.200.0.53'; DestinationPort = 53 }; Verdict = 'Accept' }
            @{ Name = 'the blocked host'; Fields = @{ Source = '10.200.0.66'; Protocol = 'icmp' }; Verdict = 'Drop' }
        ) {
            # A result made with -Kernel fails -BeVerdict when the kernel disagrees with the interpreter.
            Test-BpfPacket -Ruleset $ruleset @Fields -Kernel | Should -BeVerdict $Verdict
        }
    }
}
