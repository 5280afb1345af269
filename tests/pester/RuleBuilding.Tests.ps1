# Building rulesets without YAML: New-BpfRule's match and verdict parameters, New-BpfChain, New-BpfRuleset, New-BpfSet,
# Add-BpfRule, Remove-BpfRule and Set-BpfChain composed through the pipeline, their errors, tab completion, and the
# examples of their help, run as written. Nothing here touches the kernel. The module comes from $env:BPFILTER_MODULE
# (set by build.ps1 Test), or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $script:editingCmdlets = @('New-BpfRule', 'New-BpfChain', 'New-BpfRuleset', 'New-BpfSet', 'Add-BpfRule', 'Remove-BpfRule', 'Set-BpfChain')
}

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force -ErrorAction Stop
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

    # The error record a script block ends with, terminating or not.
    function Get-ErrorOf([scriptblock] $Script) {
        $ErrorActionPreference = 'Stop'
        try { $null = & $Script } catch { return $_ }
        throw 'expected an error, got none'
    }

    function Get-Completion([string] $Line) {
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText)
    }

    # Rules and chains the tests share: INPUT jumps to the user chain WEB.
    function New-WebRuleset {
        $web = New-BpfRule -Name lan -Source 10.0.0.0/8 -Action Return | New-BpfChain -Name WEB
        $inbound = @(
            New-BpfRule -Name ssh -Protocol tcp -DestinationPort 22 -Action Accept
            New-BpfRule -Name web -Protocol tcp -DestinationPort 80, 443 -Jump WEB
            New-BpfRule -Name late -Action Drop
        ) | New-BpfChain -Name INPUT -Hook nf-input -Policy Drop
        $inbound, $web | New-BpfRuleset -Name web
    }
}

Describe 'New-BpfRule' {
    It 'keeps the one-line rule as it was' {
        $rule = New-BpfRule -Name x -Protocol tcp -DestinationPort 23 -Action Drop
        $rule.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Rule'
        $rule.Name | Should -Be 'x'
        $rule.Verdict.ToString() | Should -Be 'drop'
        $rule.Match.ToString() | Should -Be 'protocol tcp destination-port 23'
    }

    It 'puts every match parameter into the model' {
        $v4 = New-BpfRule -Family ipv4 -InInterface eth0 -OutInterface !eth1 -Source !10.0.0.0/8, 192.168.0.0/16 -Destination 192.0.2.1 `
            -Protocol tcp -SourcePort 1024-65535 -DestinationPort 80, 443 -TcpFlags 'SYN,ACK SYN' -Length 40-1500 -Fragment '!not-first' `
            -Dscp 10 -Ttl !1 -Mark 0x10/0xf0 -Limit 10/second -LimitBurst 20 -Action Accept
        $v4.Match.ToString() | Should -Be ('family ipv4 in-interface eth0 out-interface !eth1 source ![10.0.0.0/8, 192.168.0.0/16] destination 192.0.2.1 ' +
            'protocol tcp source-port 1024-65535 destination-port [80, 443] tcp-flags SYN,ACK SYN length 40-1500 fragment !not-first ' +
            'dscp 10 ttl !1 mark 0x10/0xf0 limit 10/second burst 20')

        $v6 = New-BpfRule -Source 2001:db8::/32 -Protocol icmpv6 -IcmpType echo-request -IcmpCode 0 -HopLimit 255 -Action Accept
        $v6.Match.ToString() | Should -Be 'source 2001:db8::/32 protocol icmpv6 icmp-type 128 icmp-code 0 hop-limit 255'
        $v6.Match.ImpliedFamily | Should -Be 'Ipv6'

        (New-BpfRule -Destination '@servers' -DestinationPort '!@web-ports' -Protocol tcp -Action Drop).Match.ToString() |
            Should -Be 'destination @servers protocol tcp destination-port !@web-ports'
    }

    It 'makes every verdict, each from one parameter set' -ForEach @(
        @{ Line = '-Action Accept'; Verdict = 'accept' }
        @{ Line = '-Action drop'; Verdict = 'drop' }
        @{ Line = '-Action Reject'; Verdict = 'reject' }
        @{ Line = '-Action Continue'; Verdict = 'continue' }
        @{ Line = '-Action Return'; Verdict = 'return' }
        @{ Line = '-Action Log'; Verdict = 'log' }
        @{ Line = '-Jump WEB'; Verdict = 'jump: WEB' }
        @{ Line = '-Goto WEB'; Verdict = 'goto: WEB' }
        @{ Line = '-RejectWith icmp-port-unreachable'; Verdict = 'reject with port-unreachable' }
        @{ Line = '-Action Reject -RejectWith tcp-reset -Protocol tcp'; Verdict = 'reject with tcp-reset' }
        @{ Line = "-LogPrefix 'IN: '"; Verdict = "log 'IN: '" }
        @{ Line = "-Action log -LogPrefix ''"; Verdict = 'log' }
    ) {
        (& ([scriptblock]::Create("New-BpfRule $Line"))).Verdict.ToString() | Should -Be $Verdict
    }

    It 'refuses two verdicts at binding' -ForEach @(
        @{ Line = '-Action Drop -Jump WEB' }
        @{ Line = '-Jump WEB -Goto WEB' }
        @{ Line = '-RejectWith tcp-reset -LogPrefix x' }
        @{ Line = '-Goto WEB -LogPrefix x' }
    ) {
        $err = Get-ErrorOf ([scriptblock]::Create("New-BpfRule $Line"))
        $err.FullyQualifiedErrorId | Should -BeLike 'AmbiguousParameterSet,*'
    }

    It 'refuses text the model refuses, naming the parameter, as Bpfilter.RulesetInvalid' -ForEach @(
        @{ Line = '-Source 10.0.0.300 -Action Drop'; Message = "-Source: '10.0.0.300' is not an IPv4 address*" }
        @{ Line = '-Protocol udp -DestinationPort 70000 -Action Drop'; Message = "-DestinationPort: '70000' is not a port or port range*" }
        @{ Line = '-Protocol tcp -DestinationPort 22, !80 -Action Drop'; Message = "-DestinationPort: '!80': a '!' negates the whole list*" }
        @{ Line = '-Ttl 300 -Action Drop'; Message = "-Ttl: '300' is not a value or range from 0 to 255" }
        @{ Line = '-Protocol icmp -IcmpType packet-too-big -Action Drop'; Message = "-IcmpType: 'packet-too-big' is not an ICMP type*" }
        @{ Line = '-Limit 5/fortnight -Action Accept'; Message = "-Limit: '5/fortnight' is not a rate*" }
        @{ Line = '-LimitBurst 10 -Action Accept'; Message = '-LimitBurst needs -Limit*' }
        @{ Line = '-Limit 5/second -LimitBurst 0 -Action Accept'; Message = "-LimitBurst: a limit's burst is 1 to 1000000 packets" }
        @{ Line = '-Action goto'; Message = '-Action: goto needs a chain: write -Goto CHAIN' }
        @{ Line = '-Jump "no such"'; Message = "-Jump: 'no such' is not a chain name*" }
        @{ Line = '-Action jump'; Message = '-Action: jump needs a chain: write -Jump CHAIN' }
        @{ Line = '-Action maybe'; Message = "-Action: 'maybe' is not a verdict*" }
        @{ Line = '-Action Drop -RejectWith tcp-reset'; Message = '-RejectWith is for -Action reject (or alone), not -Action Drop' }
        @{ Line = '-DestinationPort 23 -Action Drop'; Message = 'destination-port needs protocol tcp or udp' }
        @{ Line = '-Source 10.0.0.1 -HopLimit 1 -Action Drop'; Message = 'source makes the rule ipv4, but hop-limit makes it ipv6*' }
    ) {
        $err = Get-ErrorOf ([scriptblock]::Create("New-BpfRule $Line"))
        $err.FullyQualifiedErrorId | Should -Be 'Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfRuleCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $err.Exception.Message | Should -BeLike $Message
    }

    It 'refuses unquoted tcp flags, which PowerShell splits at the commas' {
        $err = Get-ErrorOf { New-BpfRule -Protocol tcp -TcpFlags SYN,ACK,FIN,RST SYN -Action Drop }
        $err.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $err.Exception.Message | Should -BeLike "*give one text in quotes, such as 'SYN,ACK,FIN,RST SYN'*"
    }
}

Describe 'New-BpfChain, New-BpfSet and New-BpfRuleset' {
    It 'collects piped rules in order into a hooked chain with its keys' {
        $chain = 1..3 | ForEach-Object { New-BpfRule -Name "r$_" -Action Accept } |
            New-BpfChain -Name EDGE -Hook tc-ingress -Interface bpft0 -Order First -NetworkNamespace bpft-ns -Policy Drop
        $chain.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Chain'
        $chain.Rules.Name | Should -Be @('r1', 'r2', 'r3')
        ($chain.Hook, $chain.Interface, $chain.Order, $chain.NetworkNamespace, $chain.Policy.ToString()) | Should -Be @('TcIngress', 'bpft0', 'First', 'bpft-ns', 'drop')
        (New-BpfChain -Name IN -Hook NfInput -Priority -150).Priority | Should -Be -150
    }

    It 'makes a user chain without -Hook' {
        $chain = New-BpfChain -Name WEB -Rule (New-BpfRule -Action Return)
        $chain.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.UserChain'
        $chain.Rules.Count | Should -Be 1
    }

    It 'refuses hook keys without -Hook, and keys the hook does not take' {
        (Get-Command New-BpfChain).Parameters['Policy'].ParameterSets.Keys | Should -Be @('Hooked')
        $err = Get-ErrorOf { New-BpfChain -Name IN -Hook nf-input -Interface eth0 }
        $err.FullyQualifiedErrorId | Should -Be 'Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfChainCommand'
        $err.Exception.Message | Should -Be "chain 'IN': nf-input sees the whole network namespace; it takes no interface"
        $dup = Get-ErrorOf { @((New-BpfRule -Name a -Action Accept), (New-BpfRule -Name a -Action Drop)) | New-BpfChain -Name WEB }
        $dup.Exception.Message | Should -Be "chain 'WEB' has two rules named 'a'"
    }

    It 'makes sets and refuses elements of another type' {
        $set = New-BpfSet -Name ports -Type port -Element 80, 8000-8080, 80
        $set.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.NamedSet'
        $set.Type | Should -Be 'Port'
        @($set.Elements | ForEach-Object ToString) | Should -Be @('80', '8000-8080')
        $err = Get-ErrorOf { New-BpfSet -Name hosts -Type ipv4-addr -Element 10.0.0.0/8 }
        $err.FullyQualifiedErrorId | Should -Be 'Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfSetCommand'
        $err.Exception.Message | Should -Be "'10.0.0.0/8' is not an element of set 'hosts' of type ipv4-addr"
    }

    It 'sorts piped chains, user chains and sets by type, and adds what the command line gives once' {
        $ruleset = New-WebRuleset
        $ruleset.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Ruleset'
        $ruleset.Chains.Name | Should -Be 'INPUT'
        $ruleset.UserChains.Name | Should -Be 'WEB'

        $set = New-BpfSet -Name blocklist -Type ipv4-net -Element 203.0.113.0/24
        $blocked = New-BpfRule -Source '@blocklist' -Action Drop | New-BpfChain -Name OUT -Hook nf-output
        $mixed = $ruleset.UserChains[0], $set | New-BpfRuleset -Name mixed -Chain $ruleset.Chains[0], $blocked
        $mixed.Chains.Name | Should -Be @('INPUT', 'OUT')
        $mixed.UserChains.Name | Should -Be 'WEB'
        $mixed.Sets.Name | Should -Be 'blocklist'
    }

    It 'checks the ruleset whole' -ForEach @(
        @{ Script = { New-BpfRule -Jump WEB | New-BpfChain -Name INPUT -Hook nf-input | New-BpfRuleset -Name broken }; Message = "chain 'INPUT' rule 1: there is no chain 'WEB' to jump to" }
        @{ Script = { New-BpfRule -Source '@nope' -Action Drop | New-BpfChain -Name INPUT -Hook nf-input | New-BpfRuleset -Name broken }; Message = "chain 'INPUT' rule 1: there is no set 'nope'" }
        @{ Script = { New-BpfChain -Name WEB | New-BpfRuleset -Name broken }; Message = "ruleset 'broken' has no chains" }
        @{ Script = { New-BpfChain -Name INPUT -Hook nf-input | New-BpfRuleset -Name Broken }; Message = "'Broken' is not a deployment name*" }
        @{ Script = { (New-BpfChain -Name A -Hook nf-input), (New-BpfChain -Name B -Hook nf-input) | New-BpfRuleset -Name broken }; Message = "chains 'A' and 'B' both attach at nf-input*" }
    ) {
        $err = Get-ErrorOf $Script
        $err.FullyQualifiedErrorId | Should -Be 'Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfRulesetCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $err.Exception.Message | Should -BeLike $Message
    }

    It 'composes into a ruleset that the simulator runs' {
        $ruleset = New-BpfRule -Name ssh -Protocol tcp -DestinationPort 22 -Action Accept |
            New-BpfChain -Name INPUT -Hook nf-input -Policy Drop | New-BpfRuleset -Name ssh-only
        Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 22 | Should -BeVerdict Accept -ByRule ssh
        Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop -ByRule '(policy)'
    }

    It 'publishes nothing with -WhatIf' {
        New-BpfRule -Protocol udp -DestinationPort 9 -Action Drop | New-BpfChain -Name INPUT -Hook xdp -Interface lo |
            New-BpfRuleset -Name bpft-built-whatif | Publish-BpfProgram -WhatIf | Should -BeNullOrEmpty
        '/sys/fs/bpf/bpfilter/bpft-built-whatif' | Should -Not -Exist
    }
}

Describe 'Add-BpfRule, Remove-BpfRule and Set-BpfChain' {
    It 'runs the pipeline of the issue: the new rule goes to position 1' {
        $ruleset = New-BpfRule -Protocol tcp -DestinationPort 22 -Action accept | New-BpfChain -Name INPUT -Hook nf-input -Policy drop |
            New-BpfRuleset -Name web | Add-BpfRule -ChainName INPUT -Rule (New-BpfRule -Protocol icmp -Action accept) -Position 1
        $ruleset.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Ruleset'
        @($ruleset.Chains[0].Rules | ForEach-Object { $_.Match.ToString() }) | Should -Be @('protocol icmp', 'protocol tcp destination-port 22')
    }

    It 'inserts at a position, appends by default, and returns the type it was given' {
        $ruleset = New-WebRuleset
        $added = $ruleset | Add-BpfRule -ChainName INPUT -Rule (New-BpfRule -Name first -Action Accept), (New-BpfRule -Name second -Action Accept) -Position 2
        $added.Chains[0].Rules.Name | Should -Be @('ssh', 'first', 'second', 'web', 'late')
        ($ruleset | Add-BpfRule -ChainName WEB -Rule (New-BpfRule -Name end -Action Accept)).UserChains[0].Rules.Name | Should -Be @('lan', 'end')

        $chain = $ruleset.Chains[0] | Add-BpfRule (New-BpfRule -Name top -Action Accept) -Position 1
        $chain.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Chain'
        $chain.Rules.Name[0] | Should -Be 'top'
        $user = $ruleset.UserChains[0] | Add-BpfRule (New-BpfRule -Name more -Action Accept)
        $user.PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.UserChain'
        $user.Rules.Name | Should -Be @('lan', 'more')

        $ruleset.Chains[0].Rules.Name | Should -Be @('ssh', 'web', 'late') -Because 'the input is immutable'
    }

    It 'removes by positions and by names' {
        $ruleset = New-WebRuleset
        ($ruleset | Remove-BpfRule -ChainName INPUT -Position 1, 3).Chains[0].Rules.Name | Should -Be 'web'
        ($ruleset | Remove-BpfRule -ChainName INPUT -Name late, ssh).Chains[0].Rules.Name | Should -Be 'web'
        ($ruleset.UserChains[0] | Remove-BpfRule -Position 1).Rules.Count | Should -Be 0
        ($ruleset.Chains[0] | Remove-BpfRule -Name web).PSObject.TypeNames[0] | Should -Be 'Bpfilter.Engine.Rules.Chain'
        $ruleset.Chains[0].Rules.Count | Should -Be 3 -Because 'the input is immutable'
    }

    It 'changes a hooked chain and keeps the rest' {
        $ruleset = New-WebRuleset
        $changed = $ruleset | Set-BpfChain INPUT -Policy accept
        $changed.Chains[0].Policy.ToString() | Should -Be 'accept'
        $changed.Chains[0].Rules | Should -Be $ruleset.Chains[0].Rules
        $changed.UserChains | Should -Be $ruleset.UserChains
        $xdp = New-BpfChain -Name X -Hook xdp -Interface eth0 -Mode Generic | Set-BpfChain -Interface eth1
        ($xdp.Interface, $xdp.Mode) | Should -Be @('eth1', 'Generic')
    }

    It 'reports <Id> for <Case>' -ForEach @(
        @{ Case = 'a position past the end'; Id = 'RulePositionOutOfRange'; Category = 'InvalidArgument'; Script = { New-WebRuleset | Add-BpfRule -ChainName INPUT -Rule (New-BpfRule -Action Drop) -Position 5 }; Message = "chain 'INPUT' has 3 rules: a new rule goes at a position from 1 to 4, not 5" }
        @{ Case = 'a position not in the chain'; Id = 'RulePositionOutOfRange'; Category = 'InvalidArgument'; Script = { New-WebRuleset | Remove-BpfRule -ChainName WEB -Position 2 }; Message = "chain 'WEB' has 1 rule: a position is 1 to 1, not 2" }
        @{ Case = 'an unknown rule name'; Id = 'RuleNotFound'; Category = 'ObjectNotFound'; Script = { New-WebRuleset | Remove-BpfRule -ChainName INPUT -Name nope }; Message = "chain 'INPUT' has no rule named 'nope': its rules are ssh, web, late" }
        @{ Case = 'an unknown chain'; Id = 'ChainNotFound'; Category = 'ObjectNotFound'; Script = { New-WebRuleset | Add-BpfRule -ChainName OUTPUT -Rule (New-BpfRule -Action Drop) }; Message = "ruleset 'web' has no chain 'OUTPUT': its chains are INPUT, WEB" }
        @{ Case = 'no chain name with two chains'; Id = 'ChainNotNamed'; Category = 'InvalidArgument'; Script = { New-WebRuleset | Add-BpfRule -Rule (New-BpfRule -Action Drop) }; Message = "ruleset 'web' has more than one chain (INPUT, WEB): name the chain to edit" }
        @{ Case = 'a duplicate rule name'; Id = 'RulesetInvalid'; Category = 'InvalidData'; Script = { New-WebRuleset | Add-BpfRule -ChainName INPUT -Rule (New-BpfRule -Name ssh -Action Drop) }; Message = "chain 'INPUT' has two rules named 'ssh'" }
        @{ Case = 'a goto to nowhere'; Id = 'RulesetInvalid'; Category = 'InvalidData'; Script = { New-WebRuleset | Add-BpfRule -ChainName WEB -Rule (New-BpfRule -Goto NOPE) }; Message = "chain 'WEB' rule 2: there is no chain 'NOPE' to goto to" }
        @{ Case = 'a jump loop'; Id = 'RulesetInvalid'; Category = 'InvalidData'; Script = { New-WebRuleset | Add-BpfRule -ChainName WEB -Rule (New-BpfRule -Jump WEB) }; Message = 'the chains jump in a loop: WEB -> WEB' }
        @{ Case = 'a policy for a user chain'; Id = 'RulesetInvalid'; Category = 'InvalidData'; Script = { New-WebRuleset | Set-BpfChain -ChainName WEB -Policy drop }; Message = "chain 'WEB' has no hook, so it has no policy or interface*" }
        @{ Case = 'an interface for a netfilter chain'; Id = 'RulesetInvalid'; Category = 'InvalidData'; Script = { New-WebRuleset | Set-BpfChain -Interface eth0 }; Message = "chain 'INPUT': nf-input sees the whole network namespace; it takes no interface" }
    ) {
        $err = Get-ErrorOf $Script
        $err.FullyQualifiedErrorId | Should -BeLike "Bpfilter.$Id,*"
        $err.CategoryInfo.Category | Should -Be $Category
        $err.Exception.Message | Should -BeLike $Message
    }

    It 'writes an error per input object and goes on with the next' {
        $one = New-BpfChain -Name INPUT -Hook nf-input | New-BpfRuleset -Name one
        $out = (New-WebRuleset), $one | Add-BpfRule -Rule (New-BpfRule -Name x -Action Drop) -ErrorVariable errs -ErrorAction SilentlyContinue
        @($out).Count | Should -Be 1
        $out.Name | Should -Be 'one'
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'Bpfilter.ChainNotNamed,*'
    }

    It 'takes no -WhatIf: objects are immutable and nothing outside the session changes' {
        foreach ($name in 'Add-BpfRule', 'Remove-BpfRule', 'Set-BpfChain', 'New-BpfRule', 'New-BpfChain', 'New-BpfRuleset', 'New-BpfSet') {
            (Get-Command $name).Parameters.ContainsKey('WhatIf') | Should -BeFalse -Because "$name edits nothing in place"
        }
    }

    It 'declares its output types' {
        (Get-Command Add-BpfRule).OutputType.Name | Should -Be @('Bpfilter.Engine.Rules.Ruleset', 'Bpfilter.Engine.Rules.Chain', 'Bpfilter.Engine.Rules.UserChain')
        (Get-Command Remove-BpfRule).OutputType.Name | Should -Be @('Bpfilter.Engine.Rules.Ruleset', 'Bpfilter.Engine.Rules.Chain', 'Bpfilter.Engine.Rules.UserChain')
        (Get-Command Set-BpfChain).OutputType.Name | Should -Be @('Bpfilter.Engine.Rules.Ruleset', 'Bpfilter.Engine.Rules.Chain')
        (Get-Command New-BpfChain).OutputType.Name | Should -Be @('Bpfilter.Engine.Rules.Chain', 'Bpfilter.Engine.Rules.UserChain')
        (Get-Command New-BpfRuleset).OutputType.Name | Should -Be 'Bpfilter.Engine.Rules.Ruleset'
        (Get-Command New-BpfSet).OutputType.Name | Should -Be 'Bpfilter.Engine.Rules.NamedSet'
    }
}

Describe 'Tab completion' {
    BeforeAll {
        $script:rs = New-WebRuleset
        $script:inbound = $rs.Chains[0]
        $script:web = $rs.UserChains[0]
    }

    It 'completes chain names of a piped variable, of -Ruleset, and of a list of chains' {
        Get-Completion '$rs | Add-BpfRule -ChainName ' | Should -Be @('INPUT', 'WEB')
        Get-Completion 'Remove-BpfRule -Ruleset $rs -ChainName w' | Should -Be 'WEB'
        Get-Completion '$rs | Set-BpfChain -ChainName ' | Should -Be 'INPUT' -Because 'only hooked chains have a policy'
        Get-Completion '$rs | Set-BpfChain ' | Should -Be 'INPUT'
    }

    It 'completes rule names, of the chain -ChainName names when it is given' {
        Get-Completion '$rs | Remove-BpfRule -Name ' | Should -Be @('ssh', 'web', 'late', 'lan')
        Get-Completion '$rs | Remove-BpfRule -ChainName WEB -Name ' | Should -Be 'lan'
        Get-Completion 'Remove-BpfRule -Ruleset $rs -Name s' | Should -Be 'ssh'
        Get-Completion '$inbound, $web | Remove-BpfRule -Name l' | Should -Be @('late', 'lan')
    }

    It 'falls back on the names given earlier on the command line, quoting where needed' {
        Get-Completion 'New-BpfRule -Action accept | New-BpfChain INPUT -Hook nf-input | New-BpfRuleset -Name web | Add-BpfRule -ChainName ' |
            Should -Be 'INPUT'
        Get-Completion "New-BpfRule -Name 'my rule' -Action accept | New-BpfChain INPUT -Hook nf-input | New-BpfRuleset -Name web | Add-BpfRule -Rule (New-BpfRule -Name extra -Action drop) | Remove-BpfRule -Name " |
            Should -Be @("'my rule'", 'extra')
    }

    It 'completes jump and goto targets from user chains in variables and in the script' {
        Get-Completion 'New-BpfRule -Jump ' | Should -Contain 'WEB'
        Get-Completion "`$t = New-BpfChain -Name TCP`nNew-BpfChain -Name HOOKED -Hook xdp -Interface lo`nNew-BpfRule -Goto " |
            Should -Be @('TCP', 'WEB') -Because 'hooked chains are no targets'
    }

    It 'offers nothing when the edited object cannot be seen without running a command' {
        Get-Completion '(Get-Date) | Add-BpfRule -ChainName ' | Should -BeNullOrEmpty
    }

    It 'completes the words of the rule language' {
        Get-Completion 'New-BpfRule -RejectWith tcp' | Should -Be 'tcp-reset'
        Get-Completion 'New-BpfRule -Fragment n' | Should -Be 'not-first'
        Get-Completion 'New-BpfRule -IcmpType echo-r' | Should -Be @('echo-reply', 'echo-request')
        Get-Completion 'New-BpfRule -Family ' | Should -Be @('Ipv4', 'Ipv6')
        Get-Completion 'New-BpfRule -Action re' | Should -Be @('reject', 'return')
        Get-Completion 'New-BpfSet -Type ipv6' | Should -Be @('ipv6-addr', 'ipv6-net')
        Get-Completion 'New-BpfChain -Name X -Hook NfI' | Should -Be 'NfInput'
    }
}

Describe 'Help examples' {
    It '<_> runs the examples of its help as written, with the output shown' -ForEach $editingCmdlets {
        $examples = @((Get-Help -Name $_ -Full).examples.example)
        $examples.Count | Should -BeGreaterThan 0
        foreach ($example in $examples) {
            # An example is its code, then a blank line and the output it prints, when it prints any.
            $parts = ($example.code -replace "`r", '') -split "`n`n", 2
            if ($parts[0] -match 'Publish-BpfProgram') { continue }   # needs root and the demo sandbox
            Push-Location $repo
            try { $printed = & ([scriptblock]::Create($parts[0])) | Out-String -Width 200 }
            finally { Pop-Location }
            if ($parts.Count -eq 2) {
                $lines = { param($text) @(($text -split "`n" | ForEach-Object TrimEnd) -join "`n").Trim("`n") }
                & $lines $printed | Should -Be (& $lines $parts[1]) -Because "$($example.title) prints what its help shows"
            }
        }
    }
}
