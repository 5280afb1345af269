# Every exported cmdlet has real help (en-US/Bpfilter.dll-Help.xml), and every about topic the module ships is found.
# Needs no privileges: it only reads help. The module comes from $env:BPFILTER_MODULE (set by build.ps1 Test),
# or from out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeDiscovery {
    $modulePath = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $modulePath -Force -ErrorAction Stop
    $cmdlets = @(Get-Command -Module Bpfilter -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } })
    if ($cmdlets.Count -eq 0) { throw "the module at $modulePath exports no cmdlets" }
    $topics = @(Get-ChildItem -Path (Join-Path (Split-Path $modulePath) 'en-US') -Filter 'about_*.help.txt' |
        ForEach-Object { @{ Topic = $_.Name -replace '\.help\.txt$', '' } })
}

Describe 'Bpfilter help' {
    BeforeAll {
        $modulePath = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
        Import-Module $modulePath -Force -ErrorAction Stop

        # Parameters every cmdlet has; their help comes from PowerShell itself.
        $script:commonParameters = @(
            'Verbose', 'Debug', 'ErrorAction', 'WarningAction', 'InformationAction', 'ProgressAction',
            'ErrorVariable', 'WarningVariable', 'InformationVariable', 'OutVariable', 'OutBuffer', 'PipelineVariable'
        )

        # Help text is a string or a list of paragraph objects with a Text property.
        function Get-Text($value) {
            $parts = @($value) | Where-Object { $null -ne $_ } | ForEach-Object { if ($_.PSObject.Properties['Text']) { $_.Text } else { "$_" } }
            (@($parts) -join "`n").Trim()
        }
    }

    It '<Name> has a synopsis, a description, an example and a description of every parameter' -ForEach $cmdlets {
        $command = Get-Command -Name $Name -CommandType Cmdlet
        $help = Get-Help -Name $Name -Full -ErrorAction Stop
        $problems = [System.Collections.Generic.List[string]]::new()

        # Without a help file, Get-Help makes the synopsis from the syntax: it then starts with the cmdlet's name.
        $synopsis = Get-Text $help.Synopsis
        if (-not $synopsis) { $problems.Add('the synopsis is empty') }
        elseif ($synopsis -match "^$([regex]::Escape($Name))(\s|$)") { $problems.Add("the synopsis is the generated syntax stub: $synopsis") }

        if (-not (Get-Text $help.description)) { $problems.Add('the description is empty') }

        $examples = @($help.examples.example | Where-Object { $_ -and (Get-Text $_.code) })
        if ($examples.Count -eq 0) { $problems.Add('there is no example with code') }

        $documented = @($help.parameters.parameter | Where-Object { $_ })
        foreach ($parameter in $command.Parameters.Keys | Where-Object { $_ -notin $commonParameters }) {
            $entry = $documented | Where-Object { $_.name -eq $parameter } | Select-Object -First 1
            if (-not $entry) { $problems.Add("-$parameter is not in the help") }
            elseif (-not (Get-Text $entry.description)) { $problems.Add("-$parameter has no description") }
        }
        foreach ($entry in $documented) {
            if (-not $command.Parameters.ContainsKey($entry.name)) { $problems.Add("the help documents -$($entry.name), which the cmdlet does not have") }
        }

        $problems -join '; ' | Should -BeNullOrEmpty -Because "Get-Help $Name should show the help in en-US/Bpfilter.dll-Help.xml"
    }

    It 'ships the reference topics of the module' {
        $shipped = @(Get-ChildItem -Path (Join-Path (Split-Path (Get-Module Bpfilter).Path) 'en-US') -Filter 'about_*.help.txt' | ForEach-Object { $_.Name -replace '\.help\.txt$', '' })
        foreach ($topic in 'about_Bpfilter', 'about_Bpfilter_Hooks', 'about_Bpfilter_Limits', 'about_Bpfilter_Rulesets', 'about_Bpfilter_Testing') {
            $shipped | Should -Contain $topic
        }
    }

    It 'finds <Topic> with a synopsis, and its name in its own TOPIC line' -ForEach $topics {
        $about = Get-Help -Name $Topic -ErrorAction Stop
        @($about).Count | Should -Be 1
        $about.Category | Should -Be 'HelpFile'
        Get-Text $about.Synopsis | Should -Not -BeNullOrEmpty
        ($about | Out-String) | Should -Match "TOPIC\s+$Topic\s"
    }

    It 'finds the about_Bpfilter topic' {
        $about = Get-Help -Name about_Bpfilter -ErrorAction Stop
        @($about).Count | Should -Be 1
        $about.Category | Should -Be 'HelpFile'
        Get-Text $about.Synopsis | Should -Not -BeNullOrEmpty
        ($about | Out-String) | Should -Match 'TOPIC\s+about_Bpfilter'
    }
}
