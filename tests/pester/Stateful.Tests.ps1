# Stateful rules through pwsh: -CtState and -CtDirection of New-BpfRule and Test-BpfPacket, their errors a script can
# match, tab completion, and the example of about_Bpfilter_Stateful run as printed. Needs no privileges. The module
# comes from $env:BPFILTER_MODULE (set by build.ps1 Test), or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force

    function Get-Completion([string] $Line) {
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText)
    }

    function New-ServerRuleset([string] $Hook) {
        $interface = if ($Hook -in 'xdp', 'tc-ingress', 'tc-egress') { @{ Interface = 'lo' } } else { @{} }
        New-BpfRuleset -Name server -Chain (
            New-BpfChain -Name INPUT -Hook $Hook -Policy drop @interface -Rule @(
                New-BpfRule -Name established -CtState established,related -Action accept
                New-BpfRule -Name ssh -CtState new -Protocol tcp -DestinationPort 22 -Action accept))
    }
}

Describe 'New-BpfRule -CtState and -CtDirection' {
    It 'reads states as a list or one text, negated with a leading !' {
        (New-BpfRule -CtState established,related -Action accept).Match.ToString() | Should -Be 'ct-state established,related'
        (New-BpfRule -CtState 'ESTABLISHED,RELATED' -Action accept).Match.ToString() | Should -Be 'ct-state established,related'
        (New-BpfRule -CtState '!new' -CtDirection reply -Action drop).Match.ToString() | Should -Be 'ct-state !new ct-direction reply'
    }

    It 'names the parameter in its errors' {
        { New-BpfRule -CtState bogus -Action accept -ErrorAction Stop } | Should -Throw -ErrorId 'Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfRuleCommand' -ExpectedMessage '-CtState:*bogus*'
        { New-BpfRule -CtDirection back -Action accept -ErrorAction Stop } | Should -Throw -ExpectedMessage '-CtDirection:*original or reply*'
    }

    It 'completes states and directions' {
        Get-Completion 'New-BpfRule -CtState est' | Should -Be @('established')
        Get-Completion 'New-BpfRule -CtDirection r' | Should -Be @('reply')
        Get-Completion 'Test-BpfPacket -CtState un' | Should -Be @('untracked')
    }
}

Describe 'Test-BpfPacket -CtState' {
    It 'runs the example of about_Bpfilter_Stateful as printed' {
        $topic = (Get-Help about_Bpfilter_Stateful | Out-String)
        $example = [regex]::Match($topic, '(?ms)^\s+\$rs = New-BpfRuleset.*?-CtState new\s*$').Value
        $example | Should -Not -BeNullOrEmpty
        $results = @(& ([scriptblock]::Create($example)))
        $results.Count | Should -Be 2
        ($results[0].Verdict, $results[0].Rule) | Should -Be @('Accept', 'established')
        ($results[1].Verdict, $results[1].DecidedBy) | Should -Be @('Drop', 'Policy')
    }

    It 'gives each hook the state as it would see it' -ForEach @(
        @{ Hook = 'nf-input'; State = 'established'; Direction = 'reply'; Rule = 'established' }
        @{ Hook = 'tc-egress'; State = 'related'; Direction = 'original'; Rule = 'established' }
        @{ Hook = 'xdp'; State = 'established'; Direction = 'reply'; Rule = 'established' }
        @{ Hook = 'tc-ingress'; State = 'new'; Direction = $null; Rule = 'ssh' }
    ) {
        $direction = if ($Direction) { @{ CtDirection = $Direction } } else { @{} }
        $result = New-ServerRuleset $Hook | Test-BpfPacket -Protocol tcp -DestinationPort 22 -CtState $State @direction
        $result.Rule | Should -Be $Rule
    }

    It 'without -CtState, the packet has no connection, as in a kernel test run' {
        (New-ServerRuleset nf-input | Test-BpfPacket -Protocol tcp -DestinationPort 22).DecidedBy | Should -Be 'Policy'   # invalid
        (New-ServerRuleset xdp | Test-BpfPacket -Protocol tcp -DestinationPort 22).Rule | Should -Be 'ssh'             # new
    }

    It 'refuses what the hook cannot see, with an id a script can match' -ForEach @(
        @{ Hook = 'xdp'; Arguments = @{ CtState = 'invalid' }; Message = '*a lookup never answers invalid*' }
        @{ Hook = 'nf-input'; Arguments = @{ CtState = 'new'; CtDirection = 'reply' }; Message = '*a new packet goes the original way*' }
        @{ Hook = 'nf-input'; Arguments = @{ CtDirection = 'reply' }; Message = '*-CtDirection needs -CtState*' }
        @{ Hook = 'nf-input'; Arguments = @{ CtState = 'bogus' }; Message = '*-CtState:*bogus*' }
    ) {
        { New-ServerRuleset $Hook | Test-BpfPacket -Protocol tcp -DestinationPort 22 @Arguments -ErrorAction Stop } |
            Should -Throw -ErrorId 'Bpfilter.CtStateInvalid,Bpfilter.Commands.TestBpfPacketCommand' -ExpectedMessage $Message
    }

    It 'refuses ct-state where the hook knows no connection' {
        $chain = New-BpfChain -Name IN -Hook cgroup-ingress -Cgroup bpft -Rule (New-BpfRule -CtState established -Action accept)
        { New-BpfRuleset -Name c -Chain $chain | Test-BpfPacket -ErrorAction Stop } | Should -Throw -ExpectedMessage '*ct-state cannot be matched at cgroup-ingress*'
    }
}

Describe 'about_Bpfilter_Stateful' {
    It 'is found, with the table of what each hook sees' {
        $about = Get-Help -Name about_Bpfilter_Stateful -ErrorAction Stop | Out-String
        $about | Should -Match 'TOPIC\s+about_Bpfilter_Stateful'
        foreach ($hook in 'nf-prerouting', 'nf-input', 'tc-egress', 'tc-ingress', 'xdp', 'cgroup-ingress') { $about | Should -Match "\n\s+$hook\s" }
    }
}
