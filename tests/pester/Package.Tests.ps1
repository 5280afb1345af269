# build.ps1 Package makes a .nupkg that installs with PSResourceGet from a local folder repository and imports by
# name in a fresh pwsh. The install goes to a HOME of the test's own, so the machine's modules stay untouched.

BeforeAll {
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:nugetPackages = ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    $script:installHome = Join-Path $TestDrive 'home'
    New-Item -ItemType Directory -Path $installHome | Out-Null
}

Describe 'The package' {
    It 'is built by build.ps1 Package with the version and metadata of the manifest' {
        Push-Location $repo
        try { $out = & dotnet pwsh -NoProfile -NonInteractive -File ./build.ps1 Package 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        $version = (Import-PowerShellDataFile (Join-Path $repo 'Bpfilter.psd1')).ModuleVersion
        $script:package = Join-Path $repo "out/packages/Bpfilter.$version.nupkg"
        $package | Should -Exist
        $zip = [System.IO.Compression.ZipFile]::OpenRead($package)
        try {
            $entries = $zip.Entries.FullName
            $nuspec = [xml]([System.IO.StreamReader]::new($zip.GetEntry('Bpfilter.nuspec').Open()).ReadToEnd())
        } finally { $zip.Dispose() }
        $entries | Should -Contain 'Bpfilter.dll'
        $entries | Should -Contain 'Dependencies/YamlDotNet.dll'
        $entries | Should -Contain 'en-US/Bpfilter.dll-Help.xml'
        $nuspec.package.metadata.version | Should -Be $version
        $nuspec.package.metadata.tags -split ' ' | Should -Contain 'ebpf'
        $nuspec.package.metadata.releaseNotes | Should -Not -BeNullOrEmpty
    }

    It 'installs from a local repository with Install-PSResource and runs in a fresh pwsh' {
        $script = "Register-PSResourceRepository -Name bpftlocal -Uri '$(Split-Path $package)' -Trusted; " +
            "Install-PSResource -Name Bpfilter -Repository bpftlocal -Scope CurrentUser -TrustRepository; " +
            "Import-Module Bpfilter; (Get-Module Bpfilter).ModuleBase; " +
            "(Import-BpfRuleset '$repo/samples/demo.yaml' | Test-BpfPacket -Protocol tcp -DestinationPort 23).Rule"
        $info = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in 'pwsh', '-NoProfile', '-NonInteractive', '-Command', $script) { $info.ArgumentList.Add($a) }
        $info.WorkingDirectory = $repo
        $info.Environment['HOME'] = $installHome                 # PSResourceGet's repository list and CurrentUser modules
        $info.Environment['NUGET_PACKAGES'] = $nugetPackages   # where 'dotnet pwsh' finds the tool without the real HOME
        $info.Environment['DOTNET_CLI_HOME'] = $env:HOME
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $p = [System.Diagnostics.Process]::Start($info)
        $out = $p.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_ }
        $err = $p.StandardError.ReadToEnd()
        $p.WaitForExit()
        $err | Should -BeNullOrEmpty
        $out[0] | Should -BeLike "$installHome/.local/share/powershell/Modules/Bpfilter/*"
        $out[1] | Should -Be 'no-telnet'
    }
}
