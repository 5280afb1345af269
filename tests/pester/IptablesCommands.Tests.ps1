# Invoke-BpfIptables and bpf-iptables through pwsh: the seed's session typed as iptables commands, verbatim, in a
# sandbox of the test's own (bpft- namespaces joined by a veth whose receiving end is eth1 there, with 10.0.0.4),
# with real datagrams dropped (the receiver's UDP stack never sees them) and counted; scripts and batches as one
# change; unsupported options refused with nothing changed; INPUT placed at XDP. The listings themselves are compared
# with real iptables in the engine's KernelIptablesCommandTests. The module comes from $env:BPFILTER_MODULE (set by
# build.ps1 Test), or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $script:isRoot = $IsLinux -and (id -u) -eq '0'
}

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')

    # The receiver's UDP stack counts the datagrams it got for ports nobody listens on: a dropped one never gets there.
    function Get-NoPorts($Sandbox) {
        $lines = @(& /usr/bin/env ip netns exec $Sandbox.Rx cat /proc/net/snmp | Where-Object { $_ -like 'Udp:*' })
        $names = $lines[0] -split '\s+'
        [long](($lines[1] -split '\s+')[[array]::IndexOf($names, 'NoPorts')])
    }

    function Send-Udp($Sandbox, [string] $To, [int] $Count) {
        & /usr/bin/env ip netns exec $Sandbox.Tx bash -c "for i in `$(seq $Count); do echo payload > /dev/udp/$To/9; done"
    }
}

Describe 'iptables commands' -Skip:(-not $isRoot) {
    BeforeAll {
        $script:sandbox = New-TestSandbox -Subnet 10.211.0
        $script:name = "bpft-t$($sandbox.Id)"
        $script:other = "bpft-u$($sandbox.Id)"
        # The seed's demo names eth1 and 10.0.0.4: so does the receiver here, in its own namespace.
        Invoke-Ip -n $sandbox.Rx link set dev $sandbox.RxIf down
        Invoke-Ip -n $sandbox.Rx link set dev $sandbox.RxIf name eth1
        Invoke-Ip -n $sandbox.Rx link set dev eth1 up
        Invoke-Ip -n $sandbox.Rx addr add 10.0.0.4/32 dev eth1
        Invoke-Ip -n $sandbox.Tx route add 10.0.0.4/32 dev $sandbox.TxIf
        # Every call names the deployment and the namespace, so nothing here can reach the host's own.
        $script:here = @('-Name', $name, '-NetworkNamespace', $sandbox.Rx)
    }

    AfterAll {
        foreach ($n in $name, $other) { if ($n -and (Test-Path "/sys/fs/bpf/bpfilter/$n")) { Unpublish-BpfProgram -Name $n -ErrorAction Continue } }
        if ($sandbox) { Remove-TestSandbox $sandbox }
    }

    It 'runs the seed''s session as typed: the rule drops what is sent to 10.0.0.4 and -L shows it counted' {
        $deployment = bpf-iptables @here -t filter -A INPUT -i eth1 -d 10.0.0.4/32 -j DROP
        $deployment.Name | Should -Be $name
        $deployment.Chains.Chain | Should -Be @('INPUT', 'FORWARD', 'OUTPUT')
        $deployment.Chains.HookName | Should -Be @('nf-input', 'nf-forward', 'nf-output')

        bpf-iptables @here -L | Should -Be @(
            'Chain INPUT (policy ACCEPT)'
            'target     prot opt source               destination         '
            'DROP       all  --  anywhere             10.0.0.4            '
            ''
            'Chain FORWARD (policy ACCEPT)'
            'target     prot opt source               destination         '
            ''
            'Chain OUTPUT (policy ACCEPT)'
            'target     prot opt source               destination         '
        )

        $before = Get-NoPorts $sandbox
        Send-Udp $sandbox 10.0.0.4 5
        Send-Udp $sandbox $sandbox.RxAddress 3
        Start-Sleep -Milliseconds 200
        (Get-NoPorts $sandbox) - $before | Should -Be 3 -Because 'the 5 datagrams to 10.0.0.4 were dropped before UDP saw them; the 3 others were not'
        # 8 bytes of "payload\n" in UDP in IPv4: 36 bytes a datagram.
        (bpf-iptables @here -L INPUT -v)[0..2] | Should -Be @(
            'Chain INPUT (policy ACCEPT 3 packets, 108 bytes)'
            ' pkts bytes target     prot opt in     out     source               destination         '
            '    5   180 DROP       all  --  eth1   any     anywhere             10.0.0.4            '
        )
        bpf-iptables @here -S | Should -Be @('-P INPUT ACCEPT', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT', '-A INPUT -d 10.0.0.4/32 -i eth1 -j DROP')
    }

    It 'takes the same arguments after -- in scripts, with -Name and -NetworkNamespace' {
        # In the sender's namespace: two deployments cannot both hold nf-input at iptables' priority in one namespace.
        $deployment = Invoke-BpfIptables -Name $other -NetworkNamespace $sandbox.Tx -- -A INPUT -i $sandbox.TxIf -d 10.0.0.4/32 -j DROP
        $deployment.Name | Should -Be $other
        $deployment.Chains[0].NetworkNamespace | Should -Be $sandbox.Tx
        Invoke-BpfIptables -Name $other -- -L INPUT -n -v -x --line-numbers | Select-Object -Skip 2 |
            Should -Be ('1           0        0 DROP       0    --  {0} *       0.0.0.0/0            10.0.0.4            ' -f $sandbox.TxIf)
        Unpublish-BpfProgram -Name $other
    }

    It 'applies a batch as one change: the pipeline''s script lines, or commands separated by '';''' {
        $published = @(
            '# web server'
            'iptables -N WEB'
            "iptables -A WEB -p tcp -m multiport --dports 80,443 -m comment --comment 'web traffic' -j ACCEPT"
            'iptables -A INPUT -p tcp -j WEB; iptables -P FORWARD DROP'
        ) | Invoke-BpfIptables -Name $name -NetworkNamespace $sandbox.Rx
        @($published).Count | Should -Be 1
        $published.Generation | Should -Be 2 -Because 'the seed''s rule was generation 1, and four commands made one more'
        $second = bpf-iptables @here -I WEB 1 -p tcp --dport 8080 -j ACCEPT ';' -D WEB 2 ';' -E WEB HTTP
        $second.Generation | Should -Be 3
        bpf-iptables @here -S | Should -Be @(
            '-P INPUT ACCEPT', '-P FORWARD DROP', '-P OUTPUT ACCEPT', '-N HTTP'
            '-A INPUT -d 10.0.0.4/32 -i eth1 -j DROP', '-A INPUT -p tcp -j HTTP', '-A HTTP -p tcp -m tcp --dport 8080 -j ACCEPT'
        )
    }

    It 'refuses an option it does not support, naming it, and changes nothing' {
        $program = (Get-BpfChain -Name $name)[0].ProgramId
        $rules = bpf-iptables @here -S
        # bpf-iptables passes every argument to iptables' reader, so its errors come through 2>&1.
        $err = bpf-iptables @here -A INPUT -p tcp -m owner --uid-owner 0 -j ACCEPT 2>&1
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.IptablesRuleInvalid,*'
        "$err" | Should -BeLike '*argument 6 (-m): -m owner*'
        $err = bpf-iptables @here -t nat -A POSTROUTING -j MASQUERADE 2>&1
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.IptablesCommandInvalid,*'
        "$err" | Should -BeLike "*argument 2 (-t): the table 'nat'*"
        # A batch with one failing command changes nothing at all.
        $err = bpf-iptables @here -A INPUT -j ACCEPT ';' -D INPUT 7 2>&1
        $err.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.RulePositionOutOfRange,*'
        Invoke-BpfIptables -Name $name -NetworkNamespace $sandbox.Rx -WhatIf -- -F | Should -BeNullOrEmpty
        bpf-iptables @here -S | Should -Be $rules
        (Get-BpfChain -Name $name)[0].ProgramId | Should -Be $program
    }

    It 'keeps ip6tables'' rules and policies apart from iptables''' {
        bpf-ip6tables @here -A INPUT -s 2001:db8::1 -p udp -j DROP | Out-Null
        bpf-ip6tables @here -P INPUT DROP | Out-Null
        bpf-ip6tables @here -S | Should -Be @('-P INPUT DROP', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT', '-N HTTP', '-A INPUT -s 2001:db8::1/128 -p udp -j DROP')
        (bpf-iptables @here -S)[0] | Should -Be '-P INPUT ACCEPT'
        Invoke-BpfIptables -Name $name -NetworkNamespace $sandbox.Rx -Family Ipv6 -- -F ';' -P INPUT ACCEPT | Out-Null
    }

    It 'places INPUT at XDP when asked, and keeps it there' {
        Invoke-BpfIptables -Name $name -NetworkNamespace $sandbox.Rx -ChainPlacement @{ INPUT = 'xdp:eth1:generic' } -- -Z | Out-Null
        (Get-BpfChain -Name $name | Where-Object Chain -EQ INPUT).HookName | Should -Be 'nf-input' -Because '-Z alone does not republish'
        $deployment = Invoke-BpfIptables -Name $name -NetworkNamespace $sandbox.Rx -ChainPlacement @{ INPUT = 'xdp:eth1:generic' } -- -R INPUT 1 -d 10.0.0.4/32 -j DROP
        ($deployment.Chains | Where-Object Chain -EQ INPUT).HookName | Should -Be 'xdp'
        Send-Udp $sandbox 10.0.0.4 2
        Start-Sleep -Milliseconds 200
        # At XDP the frame is counted with its 14-byte Ethernet header.
        (bpf-iptables @here -L INPUT 1 -v -x) | Should -Be '       2      100 DROP       all  --  any    any     anywhere             10.0.0.4            '
        bpf-iptables @here -A INPUT -p udp --dport 53 -j ACCEPT | Out-Null
        (Get-BpfChain -Name $name | Where-Object Chain -EQ INPUT).HookName | Should -Be 'xdp'
    }

    It 'runs the first example of its help as written, with the output shown' {
        bpf-iptables @here -N BPFTMARK | Out-Null
        $example = @((Get-Help -Name Invoke-BpfIptables -Full).examples.example)[0]
        # The code, then a blank line and what -L prints (the -A before it returns the deployment, not shown; help
        # keeps no trailing blanks on its last line).
        $code, $output = ($example.code -replace "`r", '') -split "`n`n", 2
        # The example deploys where the session's defaults say, which here is the sandbox: checked before it runs.
        $defaults = $global:PSDefaultParameterValues.Clone()
        try {
            $global:PSDefaultParameterValues['Invoke-BpfIptables:Name'] = $name
            $global:PSDefaultParameterValues['Invoke-BpfIptables:NetworkNamespace'] = $sandbox.Rx
            # bpf-iptables reads the deployment the defaults name: so the example will change that one, not the host's.
            bpf-iptables -S | Should -Contain '-N BPFTMARK'
            Unpublish-BpfProgram -Name $name
            $printed = & ([scriptblock]::Create($code)) | Where-Object { $_ -is [string] }
        }
        finally {
            $global:PSDefaultParameterValues.Clear()
            foreach ($key in $defaults.Keys) { $global:PSDefaultParameterValues[$key] = $defaults[$key] }
        }
        ($printed | ForEach-Object TrimEnd) | Should -Be ($output -split "`n" | ForEach-Object TrimEnd) -Because "$($example.title) prints what its help shows"
    }
}
